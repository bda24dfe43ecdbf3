"""When the plan's answer counts as the pipeline's: labels identical, numbers within 1e-12.

Equal NaNs and infinities count as equal, and two refusals of the same batch agree:
the service then answers the same error whichever path serves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.model.plan.base import Outputs

TOLERANCE = 1e-12
"""Largest absolute difference :func:`verify` accepts on a continuous output."""


@dataclass(frozen=True)
class Mismatch:
    """Where the two answers part: which output, how, at which row of the batch."""

    output: str
    detail: str
    row: int
    max_error: float | None = None


def _gap(expected: np.ndarray, got: np.ndarray) -> tuple[float, int]:
    """Largest absolute difference and its row; equal NaNs and infinities count as 0."""
    a = np.asarray(expected, dtype=np.float64).reshape(len(expected), -1)
    b = np.asarray(got, dtype=np.float64).reshape(len(got), -1)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    error = np.where(same, 0.0, np.abs(a - b))
    error[np.isnan(error)] = np.inf
    per_row = error.max(axis=1) if error.size else np.zeros(len(a))
    row = int(per_row.argmax()) if len(per_row) else 0
    return (float(per_row[row]) if len(per_row) else 0.0), row


def _compare(expected: Outputs, got: Outputs, continuous: bool) -> Mismatch | None:
    (want, want_p), (have, have_p) = expected, got
    want, have = np.asarray(want), np.asarray(have)
    if want.shape != have.shape:
        return Mismatch("predictions", f"shape {have.shape}, pipeline's {want.shape}", 0)
    if continuous:
        error, row = _gap(want, have)
        if error > TOLERANCE:
            return Mismatch("predictions", f"off by {error:.3g}", row, error)
    else:
        differ = np.flatnonzero(want != have)
        if len(differ):
            row = int(differ[0])
            return Mismatch("labels", f"{have[row]!r} instead of {want[row]!r}", row)
    if want_p is None or have_p is None:
        return None
    if np.shape(want_p) != np.shape(have_p):
        return Mismatch("probabilities", f"shape {np.shape(have_p)}", 0)
    error, row = _gap(want_p, have_p)
    if error > TOLERANCE:
        return Mismatch("probabilities", f"off by {error:.3g}", row, error)
    return None


def outcomes_agree(
    expected: Outputs | Exception, got: Outputs | Exception, continuous: bool
) -> Mismatch | None:
    """None when the plan's outcome counts as the pipeline's, else the first difference."""
    if isinstance(expected, Exception) and isinstance(got, Exception):
        return None  # both refuse the batch: serving answers the same error either way
    if isinstance(expected, Exception):
        return Mismatch("outcomes", f"the pipeline raised {expected!r}; the plan answered", 0)
    if isinstance(got, Exception):
        return Mismatch("outcomes", f"the plan raised {got!r}; the pipeline answered", 0)
    return _compare(expected, got, continuous)
