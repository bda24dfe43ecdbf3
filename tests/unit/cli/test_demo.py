"""The demo model: the same applicants for the same seed, and the shape users serve.

``python -m service demo`` (train, pack, load) is covered in test_commands.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from service.cli import demo
from service.errors import PredictionFailed
from service.model import contract, schema
from service.model.predictor import Model


def test_the_same_seed_gives_the_same_rows() -> None:
    frame, labels = demo.dataset(rows=50, seed=11)
    again, again_labels = demo.dataset(rows=50, seed=11)
    pd.testing.assert_frame_equal(frame, again)
    pd.testing.assert_series_equal(labels, again_labels)
    other, _ = demo.dataset(rows=50, seed=12)
    assert not frame.equals(other)


def test_the_applicants_are_plausible() -> None:
    frame, labels = demo.dataset(rows=500, seed=5)
    assert list(frame.columns) == ["age", "income", "debt_ratio", "region", "employment"]
    assert len(frame) == len(labels) == 500
    assert frame["age"].between(18, 79).all()
    assert (frame["income"] > 0).all()
    assert frame["debt_ratio"].between(0, 1).all()
    assert set(frame["region"]) == set(demo.REGIONS)
    assert set(frame["employment"]) == set(demo.EMPLOYMENT)
    assert labels.name == "decision"
    assert set(labels) == {"approved", "declined"}, "both outcomes, or a classifier cannot fit"


def test_the_trained_pipeline_keeps_the_contract_with_both_unknown_policies(
    demo_pipeline: Pipeline,
) -> None:
    """One encoder ignores unknown categories and one refuses them: the demo shows both."""
    assert contract.check(demo_pipeline) is demo_pipeline
    assert isinstance(demo_pipeline.steps[-1][1], LogisticRegression)
    inferred = schema.infer(demo_pipeline)
    tolerant = {c.name: c.unknown_categories for c in inferred.columns if c.categories}
    assert tolerant == {"region": True, "employment": False}


def as_columns(row: dict[str, Any]) -> dict[str, list[Any]]:
    """One row as request columns, unvalidated: the pipeline itself must refuse it."""
    return {name: [value] for name, value in row.items()}


def test_the_demo_pipeline_predicts_and_refuses_an_unknown_employment(
    demo_pipeline: Pipeline,
) -> None:
    served = Model(
        demo_pipeline,
        schema.infer(demo_pipeline),
        path=Path("pipeline.pkl"),
        sha256="0" * 64,
        size=0,
        packed_sklearn=None,
    )
    row = {"age": 40, "income": 50000.0, "debt_ratio": 0.1, "region": "mars"}
    prediction = served.predict(as_columns({**row, "employment": "salaried"}), "both")
    assert prediction.predictions[0] in ("approved", "declined")
    assert sum(prediction.probabilities[0]) == pytest.approx(1)
    with pytest.raises(PredictionFailed, match="unknown categor"):
        served.predict(as_columns({**row, "employment": "astronaut"}))
