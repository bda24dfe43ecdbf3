"""The command line: pack, check and demo, as an operator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
from click.testing import CliRunner
from sklearn.pipeline import Pipeline

from service.cli.commands import cli, versions_table
from service.model.predictor import load


def test_pack_writes_artifact_and_schema(
    tmp_path: Path, demo_pipeline: Pipeline, demo_data: tuple[pd.DataFrame, pd.Series]
) -> None:
    source = tmp_path / "trained.pkl"
    source.write_bytes(cloudpickle.dumps(demo_pipeline))
    sample = tmp_path / "sample.csv"
    demo_data[0].head(50).to_csv(sample, index=False)
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["pack", str(source), "--sample", str(sample), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "5 columns" in result.output
    schema = json.loads((out / "pipeline.schema.json").read_text())
    assert [c["name"] for c in schema["columns"]][:2] == ["age", "income"]
    assert schema["example"]["region"] in ("north", "south", "east", "west")
    frame = demo_data[0].head(20)
    assert np.array_equal(
        load(out / "pipeline.pkl").pipeline.predict(frame), demo_pipeline.predict(frame)
    )


def test_pack_refuses_a_sample_without_the_model_columns(
    tmp_path: Path, demo_pipeline: Pipeline
) -> None:
    source = tmp_path / "trained.pkl"
    source.write_bytes(cloudpickle.dumps(demo_pipeline))
    sample = tmp_path / "sample.csv"
    sample.write_text("age,income\n30,1000\n")
    result = CliRunner().invoke(cli, ["pack", str(source), "--sample", str(sample)])
    assert result.exit_code == 1
    assert "the sample lacks columns the model reads" in result.output
    assert "debt_ratio" in result.output


def test_pack_refuses_a_contract_violation(tmp_path: Path) -> None:
    source = tmp_path / "trained.pkl"
    source.write_bytes(cloudpickle.dumps({"weights": [1, 2]}))
    sample = tmp_path / "sample.csv"
    sample.write_text("a\n1\n")
    result = CliRunner().invoke(cli, ["pack", str(source), "--sample", str(sample)])
    assert result.exit_code == 1
    assert "not a scikit-learn Pipeline" in result.output


def test_check_prints_metadata(model_path: Path) -> None:
    result = CliRunner().invoke(cli, ["check", str(model_path)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["model_type"] == "LogisticRegression"


def test_check_reports_a_broken_artifact(tmp_path: Path) -> None:
    broken = tmp_path / "pipeline.pkl"
    broken.write_bytes(b"not a pickle")
    result = CliRunner().invoke(cli, ["check", str(broken)])
    assert result.exit_code == 1
    assert "is not a valid pickle" in result.output


def test_demo_trains_a_servable_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    loaded = load(tmp_path / "pipeline.pkl")
    assert loaded.schema.source == "schema file"
    assert loaded.classes == ["approved", "declined"]


def test_sign_without_a_key_says_how_to_give_one(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("MODEL_SIGNING_KEY_FILE", raising=False)
    artifact = tmp_path / "a.pkl"
    artifact.write_bytes(b"x")
    result = CliRunner().invoke(cli, ["sign", str(artifact)])
    assert result.exit_code == 2
    assert "no key: pass --key-file or set MODEL_SIGNING_KEY_FILE" in result.output
    assert "[required]" not in CliRunner().invoke(cli, ["sign", "--help"]).output


def test_admin_commands_without_a_readable_token_are_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ADMIN_TOKEN_FILE", "nowhere/admin-token")
    result = CliRunner().invoke(cli, ["versions", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ADMIN_TOKEN_FILE: cannot read ")
    assert "No such file or directory" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_versions_table_is_a_line_per_version() -> None:
    listing = {
        "versions": [
            {
                "sha256": "a" * 64,
                "uploaded_at": "2026-11-30T10:00:00+00:00",
                "source": "upload",
                "model_type": "LogisticRegression",
                "features": [{"name": "x"}, {"name": "y"}],
                "active": True,
            },
            {"sha256": "b" * 64, "uploaded_at": "2026-11-29T10:00:00+00:00", "active": False},
        ],
        "previous": "b" * 64,
    }
    lines = versions_table(listing).splitlines()
    assert len(lines) == 4
    assert lines[1].split() == [
        "*",
        "a" * 12,
        "2026-11-30T10:00:00+00:00",
        "upload",
        "LogisticRegression",
        "2",
    ]
    assert lines[2].split() == ["b" * 12, "2026-11-29T10:00:00+00:00", "0"]
    assert lines[3] == f"rollback would activate {'b' * 12}"
