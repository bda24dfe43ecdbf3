"""Estimators that misbehave on purpose, importable so pickles of them load in any process."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin


class FailingClassifier(ClassifierMixin, BaseEstimator):
    """Fits, then refuses every prediction: a model that loads but cannot serve."""

    def fit(self, x: Any, y: Any) -> FailingClassifier:
        self.classes_ = np.unique(y)
        return self

    def predict(self, x: Any) -> Any:
        raise ValueError("this model refuses every row")


class Shift(TransformerMixin, BaseEstimator):
    """Adds ``by`` to every value: a transformer no compiled plan knows (it must fall back)."""

    def __init__(self, by: float = 1.0) -> None:
        self.by = by

    def fit(self, x: Any, y: Any = None) -> Shift:
        return self

    def transform(self, x: Any) -> Any:
        return np.asarray(x, dtype=float) + self.by


class PickyClassifier(ClassifierMixin, BaseEstimator):
    """Predicts ``x > 0`` from its first column, slowly, and refuses any batch holding 13.

    Slow so concurrent requests queue behind each other (and get batched); picky so a
    test can send one request the model refuses and check it fails alone.
    """

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay

    def fit(self, x: Any, y: Any) -> PickyClassifier:
        self.classes_ = np.array([False, True])
        self.calls_ = 0
        self.seen_: list[float] = []
        return self

    def predict(self, x: Any) -> Any:
        self.calls_ += 1
        first = np.asarray(x, dtype=float)[:, 0]
        self.seen_.extend(first.tolist())
        time.sleep(self.delay)
        if np.any(first == 13):
            raise ValueError("13 is unlucky")
        return first > 0

    def predict_proba(self, x: Any) -> Any:
        positive = self.predict(x).astype(float)
        return np.column_stack([1 - positive, positive])


class SleepOnMarker(ClassifierMixin, BaseEstimator):
    """Predicts ``x > 0``; a row equal to ``marker`` makes it sleep ``seconds``: a stuck call."""

    def __init__(self, marker: float = 999.0, seconds: float = 30.0) -> None:
        self.marker = marker
        self.seconds = seconds

    def fit(self, x: Any, y: Any) -> SleepOnMarker:
        self.classes_ = np.array([False, True])
        return self

    def predict(self, x: Any) -> Any:
        first = np.asarray(x, dtype=float)[:, 0]
        if np.any(first == self.marker):
            time.sleep(self.seconds)
        return first > 0


class LoggingSleeper(SleepOnMarker):
    """:class:`SleepOnMarker` that also appends every first-column value it scores to ``log``
    (a file: the test reads what a gunicorn worker scored)."""

    def __init__(self, log: str = "", marker: float = 999.0, seconds: float = 2.0) -> None:
        super().__init__(marker, seconds)
        self.log = log

    def predict(self, x: Any) -> Any:
        first = np.asarray(x, dtype=float)[:, 0]
        with open(self.log, "a") as log:
            log.write("".join(f"{value!r}\n" for value in first.tolist()))
        return super().predict(x)
