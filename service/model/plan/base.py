"""The vocabulary every compiler shares: what an op is, what flows between ops, and why not.

A compiler turns one fitted transformer into a :class:`Compiled` op on numpy arrays,
given the :class:`Flow` that reaches it (dtype kinds, dimensions, sparsity known at
load time). It raises :class:`Unsupported` for anything it cannot reproduce exactly,
which the caller turns into a fallback or a hand-off. The checks the numeric,
column-wise transformers (scalers, the imputer) share live here too, so each of their
modules reads as the arithmetic alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

Columns = Mapping[str, Any]
"""Validated request columns: name -> numpy array (numbers, booleans) or list (text)."""
Op = Callable[[np.ndarray], np.ndarray]
Outputs = tuple[np.ndarray, np.ndarray | None]
"""Labels, and probabilities when asked."""

NUMERIC = frozenset("biuf")
FLOAT_DTYPES = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.float16))


class Unsupported(Exception):
    """Something the plan cannot reproduce exactly; it becomes a fallback or a hand-off."""

    def __init__(self, reason: str, step: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.step = step


@dataclass(frozen=True)
class Flow:
    """What scikit-learn hands the next transformer, as far as load time can know it.

    Ops refuse inputs they cannot mirror (text into a scaler, a sparse matrix), so the
    checks happen once at compile time instead of on every call.
    """

    kinds: tuple[frozenset[str], ...]
    """Per column, the dtype kinds it may have at run time ("O": mixed objects)."""
    ndim: int = 2
    """1 for a mapper's single-name selector, which hands transformers a vector."""
    frame: bool = False
    """The transformer receives a DataFrame (ColumnTransformer), not one array."""
    sparse: bool = False
    """scikit-learn's output at this point is a sparse matrix."""

    @property
    def width(self) -> int:
        return len(self.kinds)


@dataclass(frozen=True)
class Compiled:
    """One transformer as a numpy function, with the flow it produces."""

    op: Op
    flow: Flow
    label: str


def is_passthrough(step: Any) -> bool:
    """A step scikit-learn skips: ``None`` or ``"passthrough"``."""
    return step is None or (isinstance(step, str) and step == "passthrough")


def type_name(obj: Any) -> str:
    """How a label names a step: its class, or the string or None standing in for one."""
    return repr(obj) if obj is None or isinstance(obj, str) else type(obj).__name__


def floats(x: np.ndarray) -> np.ndarray:
    """A float copy, as ``check_array(dtype=FLOAT_DTYPES, ensure_all_finite="allow-nan")``
    makes it: floats keep their precision, anything else becomes float64, infinity raises.
    Always a copy: the input may be a view of the caller's column."""
    out = x.copy() if x.dtype in FLOAT_DTYPES else np.asarray(x, dtype=np.float64)
    if np.isinf(out).any():
        raise ValueError(f"Input contains infinity or a value too large for {out.dtype!r}.")
    return out


def require_numeric(t: Any, flow: Flow) -> None:
    """The checks every numeric, column-wise transformer shares."""
    if flow.ndim != 2:
        raise Unsupported("a bare column name hands it a 1-D vector")
    if flow.sparse:
        raise Unsupported("its input is a sparse matrix")
    if any("U" in kinds for kinds in flow.kinds):
        raise Unsupported("its input holds text")
    if getattr(t, "n_features_in_", None) != flow.width:
        raise Unsupported(f"fitted on {getattr(t, 'n_features_in_', '?')} columns")
    if getattr(t, "copy", True) is False:
        # in place on pandas' array, it could change what a later entry reads
        raise Unsupported("copy=False")


def float_flow(flow: Flow) -> Flow:
    return Flow(kinds=(frozenset("f"),) * flow.width)
