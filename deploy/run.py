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
from pathlib import Path

import click

from deploy.model_choice import ChoiceError, choose
from deploy.processes import Stop, StopSignals, die_with_our_parent
from deploy.stack import ROOT, ChildDied, Stack, StackConfig, StackError

RUN_DIR = ROOT / ".run"
PATH = click.Path(path_type=Path)


@click.command()
@click.option(
    "--model",
    type=PATH,
    default=None,
    help="Pickle to serve (default: the active version, else binary/pipeline.pkl).",
)
@click.option("--port", default=8080, show_default=True, help="Public port (nginx).")
@click.option("--metrics-port", default=9200, show_default=True, help="Metrics listener.")
@click.option("--run-dir", default=RUN_DIR, type=PATH, help="State: socket, logs, store.")
@click.option("--key-file", default=RUN_DIR / "signing-key", type=PATH, help="Signing key.")
@click.option("--token-file", default=RUN_DIR / "admin-token", type=PATH, help="Admin token.")
def main(
    model: Path | None,
    port: int,
    metrics_port: int,
    run_dir: Path,
    key_file: Path,
    token_file: Path,
) -> None:
    """Serve a model through nginx and gunicorn until Ctrl-C."""
    die_with_our_parent()
    signals = StopSignals()
    stack: Stack | None = None
    try:
        choice = choose(model, run_dir=run_dir, key_file=key_file)
        stack = Stack(
            StackConfig(
                model_path=choice.model_path,
                run_dir=run_dir,
                port=port,
                metrics_port=metrics_port,
                env={
                    "MODEL_SIGNING_KEY_FILE": str(key_file.resolve()),
                    "ADMIN_TOKEN_FILE": str(token_file.resolve()),
                    "STORE_DIR": str((run_dir / "store").resolve()),
                    "BOOT_MODEL": choice.boot_model,
                },
            )
        )
        stack.start()
        click.echo(choice.says)
        _announce(stack, key_file, token_file)
        stack.watch()
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
        if stack is not None:
            stack.stop()
    click.echo("stopped")


def _announce(stack: Stack, key_file: Path, token_file: Path) -> None:
    click.echo(f"API: {stack.base_url} (try {stack.base_url}/usage); metrics: {stack.metrics_url}")
    click.echo(f"signing key: {key_file}; admin token: {token_file}; logs: {stack.run_dir}/")
    click.echo("Ctrl-C stops everything")


if __name__ == "__main__":
    main()
