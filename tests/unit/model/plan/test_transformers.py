"""Each transformer the plan compiles answers as scikit-learn does; options it cannot
mirror make a fallback that says which."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cloudpickle
import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    FunctionTransformer,
    LabelBinarizer,
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from service.model import schema
from service.model.plan import Fallback, compile_plan
from tests.unit.model.plan.pipelines import (
    FRAME,
    compiled,
    fitted,
    mapper,
)

TRANSFORMERS: dict[str, Callable[[], list[tuple[Any, ...]]]] = {
    "passthrough, bare name": lambda: [("b", None)],
    "passthrough, two columns": lambda: [(["b", "count"], None)],
    "StandardScaler": lambda: [(["b", "count"], StandardScaler())],
    "StandardScaler without mean": lambda: [(["count"], StandardScaler(with_mean=False))],
    "StandardScaler without std": lambda: [(["b"], StandardScaler(with_std=False))],
    "MinMaxScaler": lambda: [(["b"], MinMaxScaler())],
    "MinMaxScaler, clipped": lambda: [(["b", "count"], MinMaxScaler((-1, 2), clip=True))],
    "MaxAbsScaler": lambda: [(["b"], MaxAbsScaler())],
    "MaxAbsScaler, clipped": lambda: [(["b"], MaxAbsScaler(clip=True))],
    "RobustScaler": lambda: [(["b", "count"], RobustScaler())],
    "RobustScaler, scaling only": lambda: [
        (["b"], RobustScaler(with_centering=False, quantile_range=(10, 90)))
    ],
    "SimpleImputer mean": lambda: [(["gap"], SimpleImputer())],
    "SimpleImputer median": lambda: [(["gap"], SimpleImputer(strategy="median"))],
    "SimpleImputer most_frequent": lambda: [(["gap"], SimpleImputer(strategy="most_frequent"))],
    "SimpleImputer constant": lambda: [
        (["gap", "count"], SimpleImputer(strategy="constant", fill_value=-1))
    ],
    "chain: imputer, scaler": lambda: [(["gap"], [SimpleImputer(), StandardScaler()])],
    "SimpleImputer on text, constant, then one-hot": lambda: [
        (
            ["shade"],
            [
                SimpleImputer(strategy="constant", fill_value="none"),
                OneHotEncoder(handle_unknown="ignore"),
            ],
        )
    ],
    "SimpleImputer on text, most_frequent, then ordinal": lambda: [
        (["shade", "color"], [SimpleImputer(strategy="most_frequent"), OrdinalEncoder()])
    ],
    "OneHotEncoder, error": lambda: [(["color"], OneHotEncoder())],
    "OneHotEncoder, ignore, two columns": lambda: [
        (["color", "size"], OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    ],
    "OneHotEncoder, infrequent_if_exist": lambda: [
        (["size"], OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.1))
    ],
    "OneHotEncoder, max_categories": lambda: [
        (["size"], OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=2))
    ],
    "OneHotEncoder, warn": lambda: [(["size"], OneHotEncoder(handle_unknown="warn"))],
    "OneHotEncoder, drop first": lambda: [(["color"], OneHotEncoder(drop="first"))],
    "OneHotEncoder, drop if_binary, ignore": lambda: [
        (["plan", "color"], OneHotEncoder(drop="if_binary", handle_unknown="ignore"))
    ],
    "OneHotEncoder, explicit categories": lambda: [
        (["color"], OneHotEncoder(categories=[["red", "green", "blue", "violet"]]))
    ],
    "OneHotEncoder, integers": lambda: [(["count"], OneHotEncoder(handle_unknown="ignore"))],
    "OneHotEncoder, missing text": lambda: [(["shade"], OneHotEncoder(handle_unknown="ignore"))],
    "OrdinalEncoder": lambda: [(["color", "size"], OrdinalEncoder())],
    "OrdinalEncoder, unknown_value": lambda: [
        (["color"], OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1))
    ],
    "OrdinalEncoder, missing text": lambda: [(["shade"], OrdinalEncoder(encoded_missing_value=-2))],
    "LabelBinarizer": lambda: [("color", LabelBinarizer())],
    "LabelBinarizer, two classes": lambda: [("plan", LabelBinarizer(neg_label=-1, pos_label=2))],
    "LabelEncoder": lambda: [("color", LabelEncoder())],
    "LabelEncoder, integers": lambda: [("count", LabelEncoder())],
    "FunctionTransformer(log1p)": lambda: [(["b"], FunctionTransformer(np.log1p))],
    "FunctionTransformer(sqrt, validate)": lambda: [
        (["b"], FunctionTransformer(np.sqrt, validate=True))
    ],
    "chain: log1p, scaler": lambda: [
        (["b", "count"], [FunctionTransformer(np.log1p), StandardScaler()])
    ],
}


@pytest.mark.parametrize("entries", TRANSFORMERS.values(), ids=TRANSFORMERS.keys())
def test_each_transformer_matches_the_pipeline(entries: Callable[[], list]) -> None:
    compiled(fitted(mapper(*entries())))


UNSUPPORTED: dict[str, tuple[Callable[[], Any], str]] = {
    "imputer indicator": (
        lambda: mapper((["gap"], SimpleImputer(add_indicator=True))),
        "add_indicator",
    ),
    "imputer sentinel": (
        lambda: mapper((["count"], SimpleImputer(missing_values=-1))),
        "missing_values",
    ),
    "ufunc kw_args": (
        lambda: mapper((["b"], FunctionTransformer(np.clip, kw_args={"a_min": 0, "a_max": 9}))),
        "kw_args",
    ),
    "not a ufunc": (lambda: mapper((["b"], FunctionTransformer(np.round))), "not a one-argument"),
    "numeric labels binarized": (lambda: mapper(("count", LabelBinarizer())), "not all text"),
    "text and numbers in one encoder": (
        lambda: mapper((["color", "count"], OrdinalEncoder())),
        "text categories for an input that is not text",
    ),
    "default transformer": (
        lambda: mapper(
            default=StandardScaler(), drop_cols=["color", "size", "plan", "gap", "shade"]
        ),
        "default transformer",
    ),
    "pandas output": (
        lambda: ColumnTransformer([("n", StandardScaler(), ["a"])]).set_output(transform="pandas"),
        "set_output",
    ),
}


@pytest.mark.parametrize(("make", "reason"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
def test_options_the_plan_does_not_mirror_fall_back_with_a_reason(
    make: Callable[[], Any], reason: str
) -> None:
    pipeline = fitted(make())
    result = compile_plan(pipeline, schema.from_sample(pipeline, FRAME))
    assert isinstance(result, Fallback) and reason in result.reason, result


def test_a_pickled_pipeline_compiles_as_the_original() -> None:
    """Served pipelines are unpickled, and sklearn-pandas rebuilds its transformer lists
    on unpickling."""
    features = mapper(
        (["gap", "b"], [SimpleImputer(), StandardScaler()]), (["color"], OneHotEncoder())
    )
    pipeline = cloudpickle.loads(cloudpickle.dumps(fitted(features, MaxAbsScaler())))
    plan = compiled(pipeline)
    assert plan.describe()["entries"][1] == "first[1] ['gap', 'b'] (TransformerPipeline)"
