"""Estimators that misbehave on purpose, importable so pickles of them load in any process."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin


class FailingClassifier(ClassifierMixin, BaseEstimator):
    """Fits, then refuses every prediction: a model that loads but cannot serve."""

    def fit(self, x: Any, y: Any) -> FailingClassifier:
        self.classes_ = np.unique(y)
        return self

    def predict(self, x: Any) -> Any:
        raise ValueError("this model refuses every row")
