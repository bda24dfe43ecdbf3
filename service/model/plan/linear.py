"""Linear models' arithmetic as scikit-learn writes it: decision scores, then the link.

Each function repeats one of scikit-learn's own (named in its docstring), down to the
order of operations and the in-place updates, so the plan's probabilities equal the
estimator's rather than approach them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import expit

from service.model.plan.base import Unsupported

Scores = Callable[[np.ndarray], np.ndarray]


def classifier_scores(est: Any) -> Scores:
    """``LinearClassifierMixin.decision_function``."""
    coef = est.coef_
    coef_t = coef.T if coef.ndim == 2 else coef
    intercept = est.intercept_

    def scores(x: np.ndarray) -> np.ndarray:
        out = x @ coef_t + intercept
        return out.reshape(-1) if out.ndim > 1 and out.shape[1] == 1 else out

    return scores


def regressor_scores(est: Any) -> Scores:
    """``LinearModel._decision_function`` (LinearRegression, Ridge, Lasso, ElasticNet,
    LinearSVR)."""
    coef, intercept = est.coef_, est.intercept_
    weights = coef if coef.ndim == 1 else coef.T
    return lambda x: x @ weights + intercept


def sgd_regressor_scores(est: Any) -> Scores:
    coef_t, intercept = est.coef_.T, est.intercept_
    return lambda x: (x @ coef_t + intercept).ravel()


def proba_ovr(scores: np.ndarray) -> np.ndarray:
    """``LinearClassifierMixin._predict_proba_lr``: logistic, normalised over classes."""
    prob = expit(scores, out=scores)
    if prob.ndim == 1:
        return np.stack([1 - prob, prob], axis=1)
    prob_sum = prob.sum(axis=1)
    all_zero = prob_sum == 0
    if np.any(all_zero):
        prob[all_zero, :] = 1
        prob_sum[all_zero] = prob.shape[1]
    prob /= prob_sum.reshape((prob.shape[0], -1))
    return prob


def proba_softmax(scores: np.ndarray) -> np.ndarray:
    """``sklearn.utils.extmath.softmax(copy=False)``."""
    scores -= scores.max(axis=1).reshape((-1, 1))
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1).reshape((-1, 1))
    return scores


def proba_modified_huber(scores: np.ndarray) -> np.ndarray:
    """``SGDClassifier.predict_proba`` for ``loss="modified_huber"``."""
    binary = scores.ndim == 1
    prob2 = np.ones((scores.shape[0], 2)) if binary else None
    prob = prob2[:, 1] if prob2 is not None else scores
    np.clip(scores, -1, 1, prob)
    prob += 1.0
    prob /= 2.0
    if prob2 is not None:
        prob2[:, 0] -= prob
        return prob2
    prob_sum = prob.sum(axis=1)
    all_zero = prob_sum == 0
    if np.any(all_zero):
        prob[all_zero, :] = 1
        prob_sum[all_zero] = scores.shape[1]
    prob /= prob_sum.reshape((prob.shape[0], -1))
    return prob


Proba = Callable[[np.ndarray], np.ndarray]


def logistic_proba(est: Any) -> Proba:
    """LogisticRegression.predict_proba as scikit-learn >= 1.8 computes it (binary:
    logistic; otherwise softmax). Older versions' ``multi_class`` options differ."""
    if getattr(est, "multi_class", "deprecated") != "deprecated":
        raise Unsupported(f"multi_class={est.multi_class!r} (older scikit-learn)")
    if len(est.classes_) <= 2:
        return proba_ovr
    if est.solver == "liblinear":
        raise Unsupported("multiclass liblinear")
    return proba_softmax


def sgd_proba(est: Any) -> Proba | None:
    return {"log_loss": proba_ovr, "modified_huber": proba_modified_huber}.get(est.loss)
