"""Packing: the pipeline is checked and proven on its sample before anything is written.

The ``pack`` command's CLI (files written, a sample missing columns, a contract
violation) is covered in tests/unit/cli/test_commands.py; this is the module's API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from service.control import packing
from service.errors import ArtifactNotFound, ArtifactUnreadable
from service.model import predictor, schema


class Drifting(RegressorMixin, BaseEstimator):
    """Predicts how many times it was called: no two calls agree."""

    def fit(self, x: Any, y: Any) -> Drifting:
        self.calls_ = 0
        return self

    def predict(self, x: Any) -> Any:
        self.calls_ += 1
        return np.full(len(x), float(self.calls_))


def imputing(frame: pd.DataFrame, estimator: Any) -> Pipeline:
    first = ColumnTransformer(
        [
            ("num", SimpleImputer(), ["amount"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["kind"]),
        ]
    )
    return Pipeline([("columns", first), ("model", estimator)]).fit(frame, [0, 1, 0, 1])


def test_pack_writes_what_the_server_loads(
    tmp_path: Path, demo_pipeline: Pipeline, demo_data: tuple[pd.DataFrame, pd.Series]
) -> None:
    out = tmp_path / "new" / "folder"
    target, packed = packing.pack(demo_pipeline, demo_data[0].head(30), out)
    assert target == out / "pipeline.pkl"
    assert sorted(p.name for p in out.iterdir()) == ["pipeline.pkl", "pipeline.schema.json"]
    assert target.with_suffix(".schema.json").read_bytes() == schema.dumps(packed)
    loaded = predictor.load(target)
    assert loaded.schema == packed
    assert loaded.warm_up() is None


def test_nulls_in_the_sample_make_nullable_columns_that_validate(tmp_path: Path) -> None:
    frame = pd.DataFrame({"amount": [np.nan, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "b"]})
    pipeline = imputing(frame, LogisticRegression())
    _, packed = packing.pack(pipeline, frame, tmp_path)
    assert {c.name: c.nullable for c in packed.columns} == {"amount": True, "kind": False}
    assert packed.example == {"amount": None, "kind": "a"}
    assert predictor.load(tmp_path / "pipeline.pkl").warm_up() is None


def test_prove_refuses_a_pipeline_whose_served_predictions_differ() -> None:
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "b"]})
    pipeline = imputing(frame, Drifting())
    with pytest.raises(ValueError, match="predictions from validated input differ"):
        packing.prove(pipeline, schema.from_sample(pipeline, frame), frame)


def test_a_pipeline_that_fails_its_proof_writes_nothing(tmp_path: Path) -> None:
    frame = pd.DataFrame({"amount": [1.0, 2.0, 3.0, 4.0], "kind": ["a", "b", "a", "b"]})
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="differ"):
        packing.pack(imputing(frame, Drifting()), frame, out)
    assert not out.exists()


@pytest.mark.parametrize(
    "amount",
    [
        pd.array([None, 2, 3, 4], dtype="Int64"),
        np.array([np.nan, 2.0, 3.0, 4.0], dtype=np.float32),
    ],
    ids=["Int64-NA", "float32-NaN"],
)
def test_pandas_and_numpy_missing_values_pack_to_a_servable_model(
    tmp_path: Path, amount: Any
) -> None:
    frame = pd.DataFrame({"amount": amount, "kind": ["a", "b", "a", "b"]})
    packing.pack(imputing(frame, LogisticRegression()), frame, tmp_path)
    assert predictor.load(tmp_path / "pipeline.pkl").warm_up() is None


def test_load_pickle_reads_an_operators_file(tmp_path: Path, model_path: Path) -> None:
    assert isinstance(packing.load_pickle(model_path), Pipeline)
    with pytest.raises(ArtifactNotFound):
        packing.load_pickle(tmp_path / "absent.pkl")
    broken = tmp_path / "broken.pkl"
    broken.write_bytes(b"not a pickle")
    with pytest.raises(ArtifactUnreadable, match="not a valid pickle"):
        packing.load_pickle(broken)
