"""The final estimator: linear models computed directly, forests' trees summed, any other
through its own predict, with the same labels and probabilities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.preprocessing import (
    OneHotEncoder,
    StandardScaler,
)
from sklearn.svm import LinearSVC, LinearSVR
from sklearn.tree import DecisionTreeClassifier

from service.model import payload
from tests.unit.model.plan.pipelines import (
    columns_for,
    compiled,
    fitted,
    mapper,
)

MODELS: dict[str, tuple[Callable[[], Any], str]] = {
    "LogisticRegression, binary": (lambda: LogisticRegression(), "binary"),
    "LogisticRegression, multinomial": (lambda: LogisticRegression(), "multiclass"),
    "LinearRegression": (LinearRegression, "continuous"),
    "Ridge": (Ridge, "continuous"),
    "Lasso": (lambda: Lasso(alpha=0.01), "continuous"),
    "ElasticNet": (lambda: ElasticNet(alpha=0.01), "continuous"),
    "SGDClassifier log_loss, binary": (
        lambda: SGDClassifier(loss="log_loss", random_state=0),
        "binary",
    ),
    "SGDClassifier log_loss, OvR": (
        lambda: SGDClassifier(loss="log_loss", random_state=0),
        "multiclass",
    ),
    "SGDClassifier modified_huber, binary": (
        lambda: SGDClassifier(loss="modified_huber", random_state=0),
        "binary",
    ),
    "SGDClassifier modified_huber, OvR": (
        lambda: SGDClassifier(loss="modified_huber", random_state=0),
        "multiclass",
    ),
    "SGDClassifier hinge": (lambda: SGDClassifier(random_state=0), "multiclass"),
    "SGDRegressor": (lambda: SGDRegressor(random_state=0), "continuous"),
    "LinearSVC, binary": (LinearSVC, "binary"),
    "LinearSVC, multiclass": (LinearSVC, "multiclass"),
    "LinearSVR": (lambda: LinearSVR(random_state=0), "continuous"),
    "DecisionTreeClassifier": (
        lambda: DecisionTreeClassifier(max_depth=5, random_state=0),
        "multiclass",
    ),
    "RandomForestRegressor": (
        lambda: RandomForestRegressor(n_estimators=5, max_depth=5, random_state=0),
        "continuous",
    ),
    "RandomForestClassifier, binary": (
        lambda: RandomForestClassifier(n_estimators=20, random_state=0),
        "binary",
    ),
    "RandomForestClassifier, multiclass": (
        lambda: RandomForestClassifier(n_estimators=20, max_depth=6, random_state=0),
        "multiclass",
    ),
    "ExtraTreesClassifier": (
        lambda: ExtraTreesClassifier(n_estimators=10, random_state=0),
        "multiclass",
    ),
    "ExtraTreesRegressor": (
        lambda: ExtraTreesRegressor(n_estimators=10, random_state=0),
        "continuous",
    ),
    "RandomForestClassifier, parallel trees": (
        lambda: RandomForestClassifier(n_estimators=4, n_jobs=2, random_state=0),
        "binary",
    ),
}
LINEAR = (LogisticRegression, LinearRegression, Ridge, Lasso, ElasticNet, SGDClassifier)
LINEAR += (SGDRegressor, LinearSVC, LinearSVR)
FORESTS = (RandomForestClassifier, RandomForestRegressor, ExtraTreesClassifier, ExtraTreesRegressor)


@pytest.mark.parametrize(("make", "task"), MODELS.values(), ids=MODELS.keys())
def test_each_estimator_matches_the_pipeline(make: Callable[[], Any], task: str) -> None:
    model = make()
    features = mapper(
        (["b"], StandardScaler()), (["color"], OneHotEncoder(handle_unknown="ignore"))
    )
    plan = compiled(fitted(features, model=model, task=task))
    summed = isinstance(model, FORESTS) and model.n_jobs is None
    how = "computed directly" if isinstance(model, LINEAR) else "its own predict"
    assert ("trees summed directly" if summed else how) in plan.describe()["estimator"]


def test_an_estimator_the_plan_cannot_compute_answers_through_its_own_predict() -> None:
    model = LogisticRegression(solver="newton-cholesky")
    pipeline = fitted(mapper((["color"], OneHotEncoder())), model=model)
    model.sparsify()
    plan = compiled(pipeline)
    assert plan.describe()["estimator"].endswith("its own predict (sparse input or coefficients)")


def test_a_forest_given_what_its_trees_cannot_take_answers_through_its_own_predict() -> None:
    """Past float32's range the forest's own check decides, with its own message."""
    pipeline = fitted(mapper((["b"], None)), model=RandomForestClassifier(5, random_state=0))
    plan = compiled(pipeline)
    _, columns = columns_for(pipeline, rows=3)
    columns["b"] = np.array([1.0, 1e300, 2.0])
    with pytest.raises(ValueError, match="float32") as planned:
        plan.score(columns, proba=True)
    with pytest.raises(ValueError, match="float32") as own, np.errstate(over="ignore"):
        pipeline.predict_proba(payload.build_frame(columns))
    assert str(planned.value) == str(own.value)
