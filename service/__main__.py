"""Command line: ``python -m service pack|check|demo``.

click comes with Flask, gives typed options, help text and exit codes for free.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import pandas as pd

from service import demo, model, packing
from service.errors import ModelError


@click.group()
def cli() -> None:
    """Pack, check and demo scikit-learn pipelines for serving."""


@cli.command()
@click.argument("pipeline_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--sample",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="CSV of representative rows (with the model's input columns).",
)
@click.option(
    "--out",
    default=Path("binary"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to write pipeline.pkl and pipeline.schema.json into.",
)
def pack(pipeline_path: Path, sample: Path, out: Path) -> None:
    """Check PIPELINE_PATH, infer its schema from the sample, prove it predicts, and write it."""
    try:
        pipeline = packing.load_pickle(pipeline_path)
        target, packed = packing.pack(pipeline, pd.read_csv(sample), out)
    except (ModelError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"packed {target} ({len(packed.columns)} columns) with {target.stem}.schema.json")


@cli.command()
@click.argument("artifact_path", type=click.Path(path_type=Path))
def check(artifact_path: Path) -> None:
    """Validate an artifact as the server would at start-up, and print its metadata."""
    try:
        loaded = model.load(artifact_path)
    except ModelError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    click.echo(json.dumps(loaded.metadata(), indent=2))


@cli.command("demo")
@click.option(
    "--out",
    default=Path("binary"),
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
def demo_command(out: Path) -> None:
    """Train the demo credit-approval pipeline and pack it into OUT."""
    frame, labels = demo.dataset()
    target, _ = packing.pack(demo.train(frame, labels), frame, out)
    click.echo(f"demo model written to {target}")


if __name__ == "__main__":
    cli()
