"""What compiling a pipeline yields: a :class:`Plan` that serves, or a :class:`Fallback`.

Both answer ``score(columns, proba=...)`` as ``Model.score`` does, so the serving
code holds one or the other without asking which. A plan keeps no state per call,
so unlike the mapper (which writes ``transformed_names_``) it may be called from
several threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import sklearn
from scipy import sparse

from service.model import payload
from service.model.plan.base import Columns, Compiled, Outputs, is_passthrough
from service.model.plan.features import Features


@dataclass(frozen=True)
class Head:
    """The final estimator: labels and, when asked, probabilities from the matrix."""

    label: str
    run: Callable[[Any, bool], Outputs]
    has_proba: bool
    library: bool
    """Only numpy's and scikit-learn's own code runs (not an estimator someone wrote)."""


@dataclass(frozen=True)
class Handoff:
    """Where the compiled prefix stops and the original steps take over, and why."""

    step: str
    reason: str


@dataclass(frozen=True)
class Plan:
    """A pipeline compiled to numpy: same answers, no pandas, no per-call validation."""

    features: Features
    steps: tuple[Compiled, ...]
    rest: tuple[Any, ...]
    """Original middle steps run after the compiled ones (a partial plan)."""
    head: Head
    handoff: Handoff | None = None

    @property
    def has_proba(self) -> bool:
        return self.head.has_proba

    @property
    def ranges(self) -> Mapping[str, tuple[float, float]]:
        return self.features.ranges

    @property
    def bounded(self) -> bool:
        """Whether a call runs only numpy's and scikit-learn's own code: no original step
        (which may be an operator's own transformer), and an estimator computed directly
        or from scikit-learn. Such a call cannot hang and its cost grows only with the
        rows, so the batcher runs it on the request thread, without the deadline's
        hand-off (``service.serving.batching``)."""
        return not self.rest and self.head.library

    def score(self, columns: Columns, *, proba: bool) -> Outputs:
        """Labels, and probabilities if asked, as ``Model.score`` returns them.

        Raises ValueError (or TypeError, KeyError) where the pipeline would raise.
        Numpy's overflow warnings are silenced as ``Model.score`` silences them: its
        callers check the outputs are finite instead.
        """
        with np.errstate(all="ignore"):
            matrix = self.features(columns)
            for step in self.steps:
                matrix = step.op(matrix)
            for original in self.rest:
                matrix = original_transform(original, matrix)
            return self.head.run(matrix, proba)

    def predict(self, columns: Columns) -> np.ndarray:
        return self.score(columns, proba=False)[0]

    def predict_proba(self, columns: Columns) -> np.ndarray:
        probabilities = self.score(columns, proba=True)[1]
        assert probabilities is not None  # head.run returns them when asked, or raises
        return probabilities

    def describe(self) -> dict[str, Any]:
        """What ``GET /model`` shows about the serving path."""
        return {
            "path": "plan",
            "first_step": self.features.label,
            "entries": [block.label for block in self.features.blocks],
            "steps": [step.label for step in self.steps],
            "handoff": None if self.handoff is None else asdict(self.handoff),
            "estimator": self.head.label,
        }


@dataclass(frozen=True)
class Fallback:
    """No plan for this model: the pipeline serves. ``step`` and ``reason`` say why."""

    step: str
    reason: str
    pipeline: Any = field(default=None, repr=False, compare=False)

    @property
    def has_proba(self) -> bool:
        return hasattr(self.pipeline.steps[-1][1], "predict_proba")

    def score(self, columns: Columns, *, proba: bool) -> Outputs:
        return pipeline_outputs(self.pipeline, columns, proba=proba)

    def describe(self) -> dict[str, Any]:
        return {"path": "fallback", "step": self.step, "reason": self.reason}


def finite(x: Any) -> bool:
    """Whether scikit-learn's finiteness check would pass, so it may be skipped."""
    data = x.data if sparse.issparse(x) else x
    if not isinstance(data, np.ndarray) or data.dtype == object:
        return False
    return data.dtype.kind not in "fc" or bool(np.isfinite(data).all())


def original_transform(step: Any, x: Any) -> Any:
    """An original middle step after the compiled ones, checks skipped where they pass."""
    if is_passthrough(step):
        return x
    with sklearn.config_context(assume_finite=finite(x)):
        return step.transform(x)


def pipeline_outputs(pipeline: Any, columns: Columns, *, proba: bool) -> Outputs:
    """``pipeline.predict`` and ``predict_proba`` on the frame the service builds, as
    ``Model.score`` computes them: the steps transform once, the estimator answers both."""
    data: Any = payload.build_frame(dict(columns))
    for _, step in pipeline.steps[:-1]:
        if not is_passthrough(step):
            data = step.transform(data)
    estimator = pipeline.steps[-1][1]
    return estimator.predict(data), estimator.predict_proba(data) if proba else None
