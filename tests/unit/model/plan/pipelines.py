"""Small pipelines trained on one frame, and the comparison every plan test makes.

Every case trains a pipeline, compiles it against the schema ``pack`` would record,
and compares the plan with ``pipeline.predict``/``predict_proba`` on random rows
(labels identical, continuous outputs within 1e-12), then runs ``verify`` on it.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin, is_regressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from service.model import compat, payload, schema
from service.model.plan import Plan, compile_plan, verify

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402  (needs the shim first)


def make_frame(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(50, 10, rows).round(3)
    shade = np.where(rng.random(rows) < 0.2, None, rng.choice(["dark", "light"], rows))
    return pd.DataFrame(
        {
            "a": a,
            "b": rng.lognormal(3, 1, rows).round(3),
            "count": rng.integers(0, 5, rows),
            "color": rng.choice(["red", "green", "blue"], rows),
            "size": rng.choice(["s", "m", "l", "xl"], rows, p=[0.45, 0.3, 0.2, 0.05]),
            "plan": rng.choice(["basic", "pro"], rows),
            "gap": np.where(rng.random(rows) < 0.2, np.nan, a),
            "shade": pd.array(shade, dtype="str"),
        }
    )


FRAME = make_frame()


def target(frame: pd.DataFrame, task: str) -> Any:
    noise = np.random.default_rng(1).normal(0, 0.3, len(frame))
    score = (
        (frame["a"] - 50) / 10 + np.log1p(frame["b"]) / 3 - 1 + (frame["color"] == "red") + noise
    )
    if task == "binary":
        return np.where(score > 0, "yes", "no")
    if task == "multiclass":
        return np.digitize(score, [-0.5, 0.5])
    return score * 10


def fitted(first: Any, *middle: Any, model: Any = None, task: str = "binary") -> Pipeline:
    # newton-cholesky fits these in milliseconds (lbfgs takes 0.1 s); the estimator cases
    # cover the default solver
    model = model if model is not None else LogisticRegression(solver="newton-cholesky")
    steps = [("first", first), *[(f"middle{i}", m) for i, m in enumerate(middle)], ("model", model)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes and the like: not under test
        return Pipeline(steps).fit(FRAME, target(FRAME, task))


def mapper(*entries: tuple[Any, ...], **options: Any) -> DataFrameMapper:
    return DataFrameMapper([(["a"], StandardScaler()), *entries], **options)


class Doubler(TransformerMixin, BaseEstimator):
    """A custom transformer: the plan cannot know what it does."""

    def fit(self, x: Any, y: Any = None) -> Doubler:
        self.factor_ = 2.0
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x, dtype=float) * self.factor_


def columns_for(
    pipeline: Pipeline, frame: pd.DataFrame = FRAME, rows: int = 400, seed: int = 2
) -> tuple[schema.Schema, Any]:
    """The schema ``pack`` records, and random validated rows within the training data's
    range (going beyond it is :func:`verify`'s job, tested on its own)."""
    sch = schema.from_sample(pipeline, frame)
    rng = np.random.default_rng(seed)
    raw: dict[str, list[Any]] = {}
    for column in sch.columns:
        if column.categories:
            picks = rng.integers(0, len(column.categories), rows)
            raw[column.name] = [column.categories[i] for i in picks]
            continue
        low, high = frame[column.name].min(), frame[column.name].max()
        values: list[Any] = rng.uniform(low, high, rows).tolist()
        if column.kind == "integer":
            values = [round(v) for v in values]
        if column.nullable:
            values = [None if rng.random() < 0.2 else v for v in values]
        raw[column.name] = values
    return sch, payload.validate(sch, raw, unknown="ignore")


def reference(pipeline: Pipeline, columns: Any, proba: bool) -> tuple[Any, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame = payload.build_frame(columns)
        return pipeline.predict(frame), pipeline.predict_proba(frame) if proba else None


def assert_same(plan: Plan, pipeline: Pipeline, columns: Any) -> None:
    want, want_proba = reference(pipeline, columns, plan.has_proba)
    got, got_proba = plan.score(columns, proba=plan.has_proba)
    if is_regressor(pipeline):
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)
    else:
        np.testing.assert_array_equal(got, want)
    if plan.has_proba:
        np.testing.assert_allclose(got_proba, want_proba, rtol=0, atol=1e-12)


def compiled(pipeline: Pipeline, rows: int = 500) -> Plan:
    """Compile, compare on random rows, verify: the plan every supported case must give."""
    sch, columns = columns_for(pipeline)
    plan = compile_plan(pipeline, sch)
    assert isinstance(plan, Plan), plan
    assert_same(plan, pipeline, columns)
    verdict = verify(plan, pipeline, sch, sample=FRAME, rows=rows)
    assert verdict.accepted, verdict
    return plan
