"""Command line: ``python -m service pack|sign|check|demo`` for artifacts, and
``upload|versions|activate|rollback`` against a running server's admin API.

click comes with Flask and gives typed options, help text and exit codes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd

from service.cli import demo
from service.cli.admin_client import AdminClient, ClientError, token_from_env
from service.control import packing
from service.errors import ModelError, ServiceError
from service.model import predictor, signing

KEY_FILE = click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="MODEL_SIGNING_KEY_FILE",
    show_envvar=True,
    help="HMAC key file; without one the artifact is left unsigned.",
)
OUT = click.option(
    "--out",
    default=Path("binary"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write pipeline.pkl, its schema and signature into.",
)
URL = click.option(
    "--url",
    default="http://127.0.0.1:8080",
    envvar="SERVICE_URL",
    show_default=True,
    help="The server (default: $SERVICE_URL). The token comes from $ADMIN_TOKEN(_FILE).",
)


def _key(key_file: Path | None) -> bytes | None:
    return signing.load_key(key_file) if key_file else None


def _signed(target: Path, key_file: Path | None) -> str:
    if key_file is None:
        return "unsigned"
    return f"signed ({signing.write_signature(target, signing.load_key(key_file)).name})"


@click.group()
def cli() -> None:
    """Pack, sign, check and serve-control scikit-learn pipelines."""


@cli.command()
@click.argument("pipeline_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--sample",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of representative rows (with the model's input columns).",
)
@OUT
@KEY_FILE
def pack(pipeline_path: Path, sample: Path, out: Path, key_file: Path | None) -> None:
    """Check PIPELINE_PATH, infer its schema from the sample, prove it predicts, write it."""
    try:
        pipeline = packing.load_pickle(pipeline_path)
        target, packed = packing.pack(pipeline, pd.read_csv(sample), out)
    except (ModelError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"packed {target} ({len(packed.columns)} columns) with {target.stem}.schema.json, "
        + _signed(target, key_file)
    )


@cli.command()
@click.argument("artifact_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    envvar="MODEL_SIGNING_KEY_FILE",
    show_envvar=True,
    help="HMAC key file (needed: from this option or the variable).",
)
def sign(artifact_path: Path, key_file: Path | None) -> None:
    """Write ARTIFACT_PATH.sig: HMAC-SHA256 of its bytes under the key."""
    if key_file is None:
        raise click.UsageError("no key: pass --key-file or set MODEL_SIGNING_KEY_FILE")
    click.echo(signing.write_signature(artifact_path, signing.load_key(key_file)))


@cli.command()
@click.argument("artifact_path", type=click.Path(path_type=Path))
@click.option(
    "--key-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Verify the artifact's .sig with this HMAC key before unpickling it.",
)
@click.option(
    "--fast-path/--no-fast-path",
    default=True,
    envvar="FAST_PATH",
    show_default=True,
    help="Compile and verify the prediction plan too, as the server does (FAST_PATH).",
)
def check(artifact_path: Path, key_file: Path | None, fast_path: bool) -> None:
    """Validate an artifact as the server would before serving it, and print its metadata."""
    try:
        loaded = predictor.load(artifact_path, key=_key(key_file), fast_path=fast_path)
    except ServiceError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    failure = loaded.warm_up()
    if failure is not None:
        click.echo(f"error: {failure}", err=True)
        sys.exit(1)
    click.echo(loaded.metadata().model_dump_json(indent=2))


@cli.command("demo")
@OUT
@KEY_FILE
def demo_command(out: Path, key_file: Path | None) -> None:
    """Train the demo credit-approval pipeline and pack it into OUT."""
    frame, labels = demo.dataset()
    target, _ = packing.pack(demo.train(frame, labels), frame, out)
    click.echo(f"demo model written to {target}, {_signed(target, key_file)}")


def _admin(url: str, call: Any, show: Any = None) -> None:
    """Run an admin call; print its JSON answer, or ``show``'s rendering of it."""
    try:
        result = call(AdminClient(url, token_from_env()))
    except ClientError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(show(result) if show else json.dumps(result, indent=2))


@cli.command()
@click.argument("artifact_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@URL
def upload(artifact_path: Path, url: str) -> None:
    """Upload an artifact (with its .sig, if present) as a new, inactive version."""
    sig = signing.signature_path(artifact_path)
    signature = sig.read_text().strip() if sig.exists() else None
    _admin(url, lambda client: client.upload(artifact_path, signature))


@cli.command()
@URL
@click.option("--json", "as_json", is_flag=True, help="Every record in full, as JSON.")
@click.option(
    "--replica",
    "replicas",
    multiple=True,
    help="A replica's own URL (repeat it): says which version each one serves.",
)
def versions(url: str, as_json: bool, replicas: tuple[str, ...]) -> None:
    """List the stored versions, newest first; * marks the active one. With --replica,
    also what each replica of a fleet serves (a replica still following shows the old)."""
    _admin(url, lambda client: client.versions(), None if as_json else versions_table)
    if replicas:
        token = token_from_env()
        for replica in replicas:
            click.echo(f"{replica}: {AdminClient(replica, token, timeout=10).serving()}")


def versions_table(listing: dict[str, Any]) -> str:
    """One line per version: what an operator scans for before activating or rolling back."""
    lines = [f"  {'sha256':<14}{'uploaded':<27}{'source':<11}{'model':<26}features"]
    for record in listing.get("versions", []):
        mark = "*" if record.get("active") else " "
        features = record.get("features") or []
        lines.append(
            f"{mark} {record['sha256'][:12]:<14}{record.get('uploaded_at', ''):<27}"
            f"{record.get('source', ''):<11}{record.get('model_type') or '':<26}{len(features)}"
        )
    if listing.get("previous"):
        lines.append(f"rollback would activate {listing['previous'][:12]}")
    return "\n".join(lines)


@cli.command()
@click.argument("sha256")
@URL
def activate(sha256: str, url: str) -> None:
    """Serve version SHA256 from every worker; returns when they all do."""
    _admin(url, lambda client: client.activate(sha256))


@cli.command()
@URL
def rollback(url: str) -> None:
    """Re-activate the version that was active before the current one."""
    _admin(url, lambda client: client.rollback())
