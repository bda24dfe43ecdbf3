"""The WSGI entry point gunicorn loads (``service.wsgi:app``).

A model or setting that cannot serve stops the boot with one line that says what is
wrong and how to fix it: gunicorn prints a ``RuntimeError`` as ``Error: <message>``
and exits 1, while the traceback goes to the JSON log for whoever needs it.
"""

from service.errors import ServiceError
from service.http import logs
from service.http.app import create_app
from service.settings import SettingsError

BOOT_FAILED = "cannot serve: "
"""How a boot failure's line starts in gunicorn's output (``deploy/run.py`` relays it)."""

try:
    app = create_app()
except (ServiceError, SettingsError) as exc:
    message = exc.message if isinstance(exc, ServiceError) else str(exc)
    logs.configure("INFO").error("boot failed: %s", message, exc_info=True)
    raise RuntimeError(BOOT_FAILED + message) from None
