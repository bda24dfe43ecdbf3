"""The pipeline contract: each violation is refused with a message naming the step."""

from __future__ import annotations

import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from service.errors import ContractViolation
from service.model import compat, contract

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402


class NoTransform:
    def fit(self, x, y=None):
        return self


class NoPredict:
    def fit(self, x, y=None):
        return self

    def transform(self, x):
        return x


def mapper() -> DataFrameMapper:
    return DataFrameMapper([(["a"], StandardScaler())])


@pytest.mark.parametrize(
    ("obj", "fragment"),
    [
        ({"not": "a pipeline"}, "builtins.dict, not a scikit-learn Pipeline"),
        (Pipeline([("clf", LogisticRegression())]), "has 1 step(s)"),
        (
            Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression())]),
            "step 0 'scale' (StandardScaler) is not a sklearn_pandas.DataFrameMapper",
        ),
        (
            Pipeline([("m", mapper()), ("odd", NoTransform()), ("clf", LogisticRegression())]),
            "step 1 'odd' (NoTransform) has no transform()",
        ),
        (
            Pipeline([("m", mapper()), ("last", NoPredict())]),
            "step 1 'last' (NoPredict) has no predict()",
        ),
    ],
)
def test_violations_name_the_step(obj: object, fragment: str) -> None:
    with pytest.raises(ContractViolation) as caught:
        contract.check(obj)
    assert fragment in caught.value.message
    assert caught.value.status_code == 500
    assert caught.value.code == "contract_violation"


def test_a_valid_pipeline_passes_with_transformers_between(demo_pipeline: Pipeline) -> None:
    pipeline = Pipeline(
        [("m", mapper()), ("pca", PCA(n_components=1)), ("clf", LogisticRegression())]
    )
    assert contract.check(pipeline) is pipeline
    assert contract.check(demo_pipeline) is demo_pipeline
