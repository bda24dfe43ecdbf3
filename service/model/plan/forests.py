"""Random forests and extra trees: their trees' answers summed directly, without joblib.

``predict_proba`` (and a regressor's ``predict``) converts the matrix to float32, hands
each tree to joblib's ``Parallel``, which adds the trees' answers into one float64 array
under a lock, and divides by the number of trees; a classifier's ``predict`` takes the
argmax of that. With ``n_jobs`` 1 or None the trees run in order, so doing the same
additions in the same order gives the same bits, without the dispatch: for one row,
joblib costs milliseconds, the trees microseconds each. Anything else (several outputs,
parallel trees) is not compiled; a sparse, non-numeric or non-finite matrix (after
the float32 conversion: 1e300 is finite only in float64) takes the forest's own predict
with every check on, which is exact by definition and raises where ``pipeline.predict``
raises, with its message.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sklearn
from scipy import sparse
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from service.model.plan.base import Flow, Outputs, Unsupported
from service.model.plan.core import Head

CLASSIFIERS = (RandomForestClassifier, ExtraTreesClassifier)
REGRESSORS = (RandomForestRegressor, ExtraTreesRegressor)


def _checked(est: Any, flow: Flow) -> None:
    if type(est) not in CLASSIFIERS + REGRESSORS:
        raise Unsupported("not a forest the plan sums")
    if est.n_jobs not in (None, 1):
        raise Unsupported(f"n_jobs={est.n_jobs}: parallel trees add up in any order")
    if est.n_outputs_ != 1:
        raise Unsupported("several outputs")
    if flow.sparse:
        raise Unsupported("sparse input")
    if getattr(est, "feature_names_in_", None) is not None:
        raise Unsupported("fitted on named columns")
    if est.n_features_in_ != flow.width:
        raise Unsupported(f"fitted on {est.n_features_in_} features, receives {flow.width}")


def _float32(x: Any) -> np.ndarray | None:
    """The matrix the trees read, or None where the forest's own checks must decide."""
    if sparse.issparse(x) or x.dtype.kind not in "biuf":
        return None
    x32 = np.asarray(x, dtype=np.float32)
    return x32 if np.isfinite(x32).all() else None


def _own(est: Any, x: Any, proba: bool) -> Outputs:
    with sklearn.config_context(assume_finite=False):
        labels = est.predict(x)
        return labels, est.predict_proba(x) if proba else None


def forest_head(est: Any, flow: Flow) -> Head:
    """The forest's trees summed in order, or its own predict for what they cannot take."""
    _checked(est, flow)
    trees = est.estimators_
    classifier = isinstance(est, CLASSIFIERS)
    label = f"{type(est).__name__}: its {len(trees)} trees summed directly"

    def total(x32: np.ndarray) -> np.ndarray:
        width = (len(x32), est.n_classes_) if classifier else (len(x32),)
        out = np.zeros(width, dtype=np.float64)
        for tree in trees:
            if classifier:
                out += tree.predict_proba(x32, check_input=False)
            else:
                out += tree.predict(x32, check_input=False)
        out /= len(trees)
        return out

    def run(x: Any, proba: bool) -> Outputs:
        x32 = _float32(x)
        if x32 is None:
            return _own(est, x, proba)
        if not classifier:
            if proba:
                raise AttributeError(f"{type(est).__name__} has no predict_proba")
            return total(x32), None
        probabilities = total(x32)
        labels = est.classes_.take(np.argmax(probabilities, axis=1), axis=0)
        return labels, probabilities if proba else None

    return Head(label, run, classifier, True)
