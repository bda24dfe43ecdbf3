"""``make run``: serve a model through nginx and gunicorn on this machine until stopped.

    python -m deploy.run [--model path/to/pipeline.pkl] [--port 8080] ...

It decides which model serves (``deploy/model_choice.py``) and says so in one
line, starts the stack (``deploy/stack.py``), and watches both servers: when either
nginx or gunicorn exits, it says which, shows the end of that one's log, stops the
other and exits non-zero. Every failure to start is one line on the console with
the fix; traces stay in the logs.

Stopping is idempotent: INT, TERM or HUP, any number of times, to this process
or to its whole process group (systemd, CI runners and ``kill -- -PGID`` signal
the group, and make passes the signal on again) stop everything once and
completely. If this process is killed outright, its servers die with it
(``PR_SET_PDEATHSIG``), and it dies with make (or whatever started it) too.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import click

from deploy.model_choice import Choice, ChoiceError, choose
from deploy.processes import Stop, StopSignals, die_with_our_parent
from deploy.stack import ROOT, TLS, ChildDied, Stack, StackConfig, StackError, system_binary

RUN_DIR = ROOT / ".run"
PATH = click.Path(path_type=Path)


class Served(Protocol):
    """What a launcher serves: a stack, or a fleet of them."""

    def start(self) -> object: ...

    def watch(self) -> None: ...

    def stop(self) -> None: ...


S = TypeVar("S", bound=Served)
F = TypeVar("F", bound=Callable[..., None])


def serve(
    model: Path | None,
    run_dir: Path,
    key_file: Path,
    build: Callable[[Choice], S],
    announce: Callable[[S], None],
) -> None:
    """The launchers' one life cycle (``make run``, ``make fleet``): choose the model, start,
    announce, watch until a stop signal or a death, then stop everything, once."""
    die_with_our_parent()
    signals = StopSignals()
    served: S | None = None
    try:
        choice = choose(model, run_dir=run_dir, key_file=key_file)
        served = build(choice)
        served.start()
        click.echo(choice.says)
        announce(served)
        served.watch()
    except Stop:
        click.echo("stopping")
    except ChildDied as exc:
        click.echo(f"error: {exc}: stopping everything; the end of {exc.child.log}:", err=True)
        click.echo(textwrap.indent(exc.tail or "(empty)", "  "), err=True)
        sys.exit(1)
    except (ChoiceError, StackError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        signals.settle()
        if served is not None:
            served.stop()
    click.echo("stopped")


def credentials(choice: Choice, key_file: Path, token_file: Path) -> dict[str, str]:
    """The environment every served process gets: the local credentials, the boot model."""
    return {
        "MODEL_SIGNING_KEY_FILE": str(key_file.resolve()),
        "ADMIN_TOKEN_FILE": str(token_file.resolve()),
        "BOOT_MODEL": choice.boot_model,
    }


def launcher_options(public: str) -> Callable[[F], F]:
    """The options `make run` and `make fleet` share; ``public`` names what listens."""
    options = [
        click.option(
            "--model",
            type=PATH,
            default=None,
            help="Pickle to serve (default: the active version, else binary/pipeline.pkl).",
        ),
        click.option("--port", default=8080, show_default=True, help=f"Public port ({public})."),
        click.option("--metrics-port", default=9200, show_default=True, help="Metrics listener."),
        click.option("--run-dir", default=RUN_DIR, type=PATH, help="State: logs, store."),
        click.option("--key-file", default=RUN_DIR / "signing-key", type=PATH, help="Signing key."),
        click.option(
            "--token-file", default=RUN_DIR / "admin-token", type=PATH, help="Admin token."
        ),
    ]

    def decorate(command: F) -> F:
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


@click.command()
@launcher_options("nginx")
@click.option("--tls/--no-tls", default=False, help="A TLS listener too (self-signed).")
@click.option("--tls-port", default=8443, show_default=True, help="The TLS listener's port.")
def main(
    model: Path | None,
    port: int,
    metrics_port: int,
    run_dir: Path,
    key_file: Path,
    token_file: Path,
    tls: bool,
    tls_port: int,
) -> None:
    """Serve a model through nginx and gunicorn until Ctrl-C."""

    def build(choice: Choice) -> Stack:
        env = credentials(choice, key_file, token_file)
        env["STORE_DIR"] = str((run_dir / "store").resolve())
        listener = TLS(tls_port, *self_signed(run_dir / "tls")) if tls else None
        config = StackConfig(choice.model_path, run_dir, port, metrics_port, env=env, tls=listener)
        return Stack(config)

    serve(model, run_dir, key_file, build, lambda stack: _announce(stack, key_file, token_file))


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for localhost and 127.0.0.1 and its key, made once (openssl, P-256,
    30 days) and kept: clients trust it with ``curl --cacert <folder>/cert.pem``."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if cert.exists() and key.exists() and _valid_for_a_day(cert):
        return cert, key
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    subprocess.run(
        [
            system_binary("openssl", "make run TLS=1"),
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    key.chmod(0o600)
    return cert, key


def _valid_for_a_day(cert: Path) -> bool:
    openssl = system_binary("openssl", "make run TLS=1")
    check = [openssl, "x509", "-checkend", "86400", "-noout", "-in", str(cert)]
    return subprocess.run(check, capture_output=True).returncode == 0


def _announce(stack: Stack, key_file: Path, token_file: Path) -> None:
    click.echo(f"API: {stack.base_url} (try {stack.base_url}/usage); metrics: {stack.metrics_url}")
    if stack.tls_url is not None and stack.config.tls is not None:
        ca = stack.config.tls.cert
        click.echo(f"TLS: {stack.tls_url} (curl --cacert {ca} {stack.tls_url}/readyz)")
    click.echo(f"signing key: {key_file}; admin token: {token_file}; logs: {stack.run_dir}/")
    click.echo("Ctrl-C stops everything")


if __name__ == "__main__":
    main()
