"""The first step: mapper entries and ColumnTransformer parts compile to blocks that read
the request columns as pandas would hand them; an entry the plan cannot mirror makes the
whole model fall back, and the pipeline serves."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from service.model import payload, schema
from service.model.plan import Fallback, Plan, compile_plan, prepare, verify
from tests.unit.model.plan.pipelines import (
    FRAME,
    Doubler,
    assert_same,
    columns_for,
    compiled,
    fitted,
    mapper,
    reference,
)


def test_mapper_default_none_passes_the_other_columns_through() -> None:
    drop = ["color", "size", "plan", "shade", "gap"]
    pipeline = fitted(mapper((["b"], StandardScaler()), default=None, drop_cols=drop))
    sch = schema.from_sample(pipeline, FRAME)
    assert sch.names == ("a", "b", "count")  # the column `default` passes through
    plan = compile_plan(pipeline, sch)
    assert isinstance(plan, Plan)
    assert plan.describe()["entries"][-1] == "first[default] ['count']"
    assert verify(plan, pipeline, sch, rows=500).accepted


COLUMN_TRANSFORMERS: dict[str, Callable[[], ColumnTransformer]] = {
    "remainder drop": lambda: ColumnTransformer(
        [
            ("num", StandardScaler(), ["a", "b"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
        ]
    ),
    "remainder passthrough": lambda: ColumnTransformer(
        [
            ("num", StandardScaler(), ["a"]),
            ("out", "drop", ["color", "size", "plan", "gap", "shade"]),
        ],
        remainder="passthrough",
    ),
    "nested pipeline": lambda: ColumnTransformer(
        [
            ("gap", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), ["gap"]),
            ("cat", OrdinalEncoder(), ["color", "size"]),
            ("log", FunctionTransformer(np.log1p), ["b"]),
        ]
    ),
    "positional columns": lambda: ColumnTransformer([("num", RobustScaler(), [0, 1])]),
    "sparse output": lambda: ColumnTransformer(
        [("num", StandardScaler(), ["a"]), ("cat", OneHotEncoder(), ["color", "size"])],
        sparse_threshold=1.0,
    ),
}


@pytest.mark.parametrize("make", COLUMN_TRANSFORMERS.values(), ids=COLUMN_TRANSFORMERS.keys())
def test_column_transformers_match_the_pipeline(make: Callable[[], ColumnTransformer]) -> None:
    compiled(fitted(make(), StandardScaler(with_mean=False)))


FALLBACKS: dict[str, tuple[Callable[[], Any], str, str]] = {
    "custom transformer": (
        lambda: mapper((["b"], Doubler())),
        "first[1] ['b'] (Doubler)",
        "no compiled form for tests.unit.model.plan.pipelines.Doubler",
    ),
    "custom transformer in a chain": (
        lambda: mapper((["b"], [StandardScaler(), Doubler()])),
        "first[1]",
        "'doubler' (Doubler): no compiled form",
    ),
    "lambda in FunctionTransformer": (
        lambda: mapper((["b"], FunctionTransformer(lambda x: x + 1))),
        "FunctionTransformer",
        "is not a one-argument numpy ufunc",
    ),
    "df_out": (lambda: mapper(df_out=True), "first", "df_out=True"),
    "copy=False": (lambda: mapper((["b"], MinMaxScaler(copy=False))), "first[1]", "copy=False"),
    "transformer_weights": (
        lambda: ColumnTransformer(
            [("num", StandardScaler(), ["a"])], transformer_weights={"num": 2}
        ),
        "first",
        "transformer_weights",
    ),
    "input_df": (lambda: mapper((["b"], StandardScaler()), input_df=True), "first[0]", "input_df"),
}


@pytest.mark.parametrize(("make", "step", "reason"), FALLBACKS.values(), ids=FALLBACKS.keys())
def test_unknown_first_step_parts_fall_back_and_the_pipeline_serves(
    make: Callable[[], Any], step: str, reason: str
) -> None:
    pipeline = fitted(make())
    sch, columns = columns_for(pipeline)
    result, verdict = prepare(pipeline, sch)
    assert isinstance(result, Fallback)
    assert step in result.step and reason in result.reason
    assert result.describe() == {"path": "fallback", "step": result.step, "reason": result.reason}
    assert not verdict.accepted
    labels, probabilities = result.score(columns, proba=True)
    want, want_proba = reference(pipeline, columns, proba=True)
    np.testing.assert_array_equal(labels, want)
    np.testing.assert_array_equal(probabilities, want_proba)


def test_a_column_of_nulls_reaches_encoders_as_pandas_hands_it() -> None:
    """Nulls beside text become NaN (pandas' str dtype), a column of nulls only stays None
    (object dtype): the encoder knows NaN as a category and None not at all."""
    pipeline = fitted(mapper((["shade"], OrdinalEncoder(encoded_missing_value=-2))))
    sch = schema.from_sample(pipeline, FRAME)
    plan = compile_plan(pipeline, sch)
    assert isinstance(plan, Plan)
    mixed = payload.validate(sch, {"a": [50.0, 51.0], "shade": ["dark", None]}, unknown="ignore")
    assert_same(plan, pipeline, mixed)
    alone = payload.validate(sch, {"a": [50.0], "shade": [None]}, unknown="ignore")
    with pytest.raises(ValueError):
        reference(pipeline, alone, proba=False)
    with pytest.raises(ValueError, match="unknown categories"):
        plan.score(alone, proba=False)
