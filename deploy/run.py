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

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, TypeVar

import click

from deploy.model_choice import Choice, ChoiceError, choose
from deploy.processes import Stop, StopSignals, die_with_our_parent
from deploy.stack import ROOT, ChildDied, Stack, StackConfig, StackError

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
def main(
    model: Path | None,
    port: int,
    metrics_port: int,
    run_dir: Path,
    key_file: Path,
    token_file: Path,
) -> None:
    """Serve a model through nginx and gunicorn until Ctrl-C."""

    def build(choice: Choice) -> Stack:
        env = credentials(choice, key_file, token_file)
        env["STORE_DIR"] = str((run_dir / "store").resolve())
        config = StackConfig(choice.model_path, run_dir, port, metrics_port, env=env)
        return Stack(config)

    serve(model, run_dir, key_file, build, lambda stack: _announce(stack, key_file, token_file))


def _announce(stack: Stack, key_file: Path, token_file: Path) -> None:
    click.echo(f"API: {stack.base_url} (try {stack.base_url}/usage); metrics: {stack.metrics_url}")
    click.echo(f"signing key: {key_file}; admin token: {token_file}; logs: {stack.run_dir}/")
    click.echo("Ctrl-C stops everything")


if __name__ == "__main__":
    main()
