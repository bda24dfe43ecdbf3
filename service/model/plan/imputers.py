"""``SimpleImputer``: NaN replaced by the fitted statistic, dtypes as it keeps them.

Numbers, and text with the ``constant`` or ``most_frequent`` strategy. Only what can
be mirrored exactly compiles: NaN as the missing marker, no indicator columns, and no
column scikit-learn would drop for lack of data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from service.model.plan.base import (
    Compiled,
    Flow,
    Unsupported,
    float_flow,
    floats,
    require_numeric,
)


def simple_imputer(t: Any, flow: Flow) -> Compiled:
    """Imputation of NaN, numeric or text (see :func:`_numeric` and :func:`_text`)."""
    missing = t.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)):
        raise Unsupported(f"missing_values={missing!r} (only NaN is compiled)")
    if t.add_indicator:
        raise Unsupported("add_indicator=True")
    if flow.width and all(kinds == frozenset("U") for kinds in flow.kinds):
        return _text(t, flow)
    return _numeric(t, flow)


def _text(t: Any, flow: Flow) -> Compiled:
    """Text columns (object arrays): scikit-learn masks the values unequal to themselves
    (``_object_dtype_isnan``), that is NaN, which is how pandas holds a missing text
    value beside others; a None (a column of nulls only) stays, as it does there."""
    if flow.ndim != 2 or flow.sparse:
        raise Unsupported("text imputation of a 1-D vector or a sparse matrix")
    if t.strategy not in ("constant", "most_frequent"):
        raise Unsupported(f"strategy={t.strategy!r} on text")
    if getattr(t, "n_features_in_", None) != flow.width:
        raise Unsupported(f"fitted on {getattr(t, 'n_features_in_', '?')} columns")
    fill = np.asarray(t.statistics_, dtype=object)
    if fill.shape != (flow.width,) or not all(isinstance(v, str) for v in fill):
        raise Unsupported("a fill value that is not text (or a column scikit-learn drops)")

    def op(x: np.ndarray) -> np.ndarray:
        y = np.array(x, dtype=object)
        mask = y != y
        if mask.any():
            y[mask] = np.broadcast_to(fill, y.shape)[mask]
        return y

    return Compiled(op, Flow(kinds=flow.kinds), f"SimpleImputer({t.strategy}, text)")


def _numeric(t: Any, flow: Flow) -> Compiled:
    """Mean and median convert to floats; most_frequent and constant keep the input dtype
    (scikit-learn's ``dtype=None``), so integers pass."""
    require_numeric(t, flow)
    if getattr(t, "_fit_dtype", np.dtype(object)).kind not in "iuf":
        raise Unsupported("fitted on non-numeric data")
    fill_dtype = getattr(t, "_fill_dtype", None)
    if fill_dtype is None or np.dtype(fill_dtype).kind not in "iuf":
        raise Unsupported(f"fill dtype {fill_dtype} (numeric imputation only)")
    fill = np.asarray(t.statistics_).astype(fill_dtype)
    if fill.dtype.kind == "f" and np.isnan(fill).any():
        raise Unsupported("a column had no value at fit (scikit-learn drops it)")
    to_float = t.strategy in ("mean", "median")
    if not to_float and any(not kinds <= frozenset("iuf") for kinds in flow.kinds):
        raise Unsupported(f"strategy={t.strategy!r} on booleans or objects")

    def op(x: np.ndarray) -> np.ndarray:
        y = floats(x) if to_float else x.copy()
        if y.dtype.kind == "f":
            if not to_float and np.isinf(y).any():
                raise ValueError("Input contains infinity or a value too large.")
            mask = np.isnan(y)
            if mask.any():
                y[mask] = np.broadcast_to(fill, y.shape)[mask]
        return y

    out = float_flow(flow) if to_float else Flow(kinds=flow.kinds)
    return Compiled(op, out, f"SimpleImputer({t.strategy})")
