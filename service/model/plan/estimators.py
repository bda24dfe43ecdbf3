"""The final estimator: linear models computed directly, forests' trees summed directly,
any other through its own predict.

A linear model's answer is one matrix product and a link function (see
:mod:`~service.model.plan.linear`), a forest's the sum of its trees' (see
:mod:`~service.model.plan.forests`); for any other estimator, or one whose input the
plan cannot vouch for, its own ``predict`` is exact and only the finiteness check
that would pass anyway is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.linear_model import (
    ElasticNet,
    Lasso,
    LinearRegression,
    LogisticRegression,
    Ridge,
    SGDClassifier,
    SGDRegressor,
)
from sklearn.svm import LinearSVC, LinearSVR

from service.model.plan.base import Flow, Outputs, Unsupported
from service.model.plan.core import Head, finite
from service.model.plan.forests import forest_head
from service.model.plan.linear import (
    Proba,
    Scores,
    classifier_scores,
    logistic_proba,
    regressor_scores,
    sgd_proba,
    sgd_regressor_scores,
)


def generic_head(estimator: Any, why: str) -> Head:
    """Any estimator through its own predict; ``assume_finite`` skips the one check that
    would pass anyway (it stays on when the matrix holds NaN or infinity)."""
    has_proba = hasattr(estimator, "predict_proba")

    def run(x: Any, proba: bool) -> Outputs:
        with sklearn.config_context(assume_finite=finite(x)):
            labels = estimator.predict(x)
            return labels, estimator.predict_proba(x) if proba else None

    library = type(estimator).__module__.split(".")[0] == "sklearn"
    return Head(f"{type(estimator).__name__}: its own predict ({why})", run, has_proba, library)


def _numeric_input(x: np.ndarray) -> np.ndarray:
    """``validate_data``'s part that changes anything: objects become float64 and NaN or
    infinity raise."""
    if x.dtype == object:
        x = x.astype(np.float64)
    if x.dtype.kind in "fc" and not np.isfinite(x).all():
        raise ValueError("Input X contains NaN or infinity.")
    return x


_CLASSIFIERS: dict[type, Callable[[Any], Proba | None]] = {
    LogisticRegression: logistic_proba,
    SGDClassifier: sgd_proba,
    LinearSVC: lambda est: None,
}
_REGRESSORS: dict[type, Callable[[Any], Scores]] = {
    LinearRegression: regressor_scores,
    Ridge: regressor_scores,
    Lasso: regressor_scores,
    ElasticNet: regressor_scores,
    LinearSVR: regressor_scores,
    SGDRegressor: sgd_regressor_scores,
}


def _linear_head(est: Any, flow: Flow) -> Head:
    """A linear model computed directly: one matrix product, then the estimator's own
    link function, in scikit-learn's order of operations."""
    cls = type(est)
    if cls not in _CLASSIFIERS and cls not in _REGRESSORS:
        raise Unsupported("not a linear model the plan computes")
    if flow.sparse or sparse.issparse(est.coef_):
        raise Unsupported("sparse input or coefficients")
    if getattr(est, "feature_names_in_", None) is not None:
        raise Unsupported("fitted on named columns")
    if est.n_features_in_ != flow.width:
        raise Unsupported(f"fitted on {est.n_features_in_} features, receives {flow.width}")
    if cls in _REGRESSORS:
        scores = _REGRESSORS[cls](est)

        def regress(x: np.ndarray, proba: bool) -> Outputs:
            if proba:
                raise AttributeError(f"{cls.__name__} has no predict_proba")
            return scores(_numeric_input(x)), None

        return Head(f"{cls.__name__}: computed directly", regress, False, True)
    classes, probability = est.classes_, _CLASSIFIERS[cls](est)
    decision = classifier_scores(est)

    def classify(x: np.ndarray, proba: bool) -> Outputs:
        s = decision(_numeric_input(x))
        indices = (s > 0).astype(np.intp) if s.ndim == 1 else s.argmax(axis=1)
        if not proba:
            return classes.take(indices, axis=0), None
        if probability is None:
            raise AttributeError(f"{cls.__name__} has no predict_proba")
        return classes.take(indices, axis=0), probability(s.copy())

    return Head(f"{cls.__name__}: computed directly", classify, probability is not None, True)


def compile_head(estimator: Any, flow: Flow) -> Head:
    """A linear model computed directly, a forest's trees summed, else its own predict."""
    reasons = []
    for compile_direct in (_linear_head, forest_head):
        try:
            return compile_direct(estimator, flow)
        except Unsupported as exc:
            reasons.append(exc.reason)
        except Exception as exc:  # an estimator unlike its class: its own predict is exact
            return generic_head(estimator, f"could not read it: {exc!r}")
    return generic_head(estimator, reasons[0])
