# The ablation's "no-gc-freeze" variant (bench/ablation.py): deploy/gunicorn.conf.py as
# shipped, except that nothing freezes the heap before the workers fork, so the benchmark
# can show what the freeze saves. gunicorn has no include, and hooks cannot be set from
# GUNICORN_CMD_ARGS: this file runs the shipped one in its own namespace, then replaces
# that one hook. The production config keeps no switch for it.
from pathlib import Path

_SHIPPED = Path(__file__).resolve().parents[1] / "deploy" / "gunicorn.conf.py"
exec(compile(_SHIPPED.read_text(), _SHIPPED, "exec"))


def when_ready(server: object) -> None:
    """Nothing: the shipped hook's gc.collect() and gc.freeze() are what this variant drops."""
