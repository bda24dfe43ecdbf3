"""``SimpleImputer`` on numbers: NaN replaced by the fitted statistic, dtypes as it keeps them.

Only what can be mirrored exactly compiles: NaN as the missing marker, no indicator
columns, numeric fill values, and no column scikit-learn would drop for lack of data.
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
    """Numeric imputation of NaN. Mean and median convert to floats; most_frequent and
    constant keep the input dtype (scikit-learn's ``dtype=None``), so integers pass."""
    require_numeric(t, flow)
    missing = t.missing_values
    if not (isinstance(missing, float) and math.isnan(missing)):
        raise Unsupported(f"missing_values={missing!r} (only NaN is compiled)")
    if t.add_indicator:
        raise Unsupported("add_indicator=True")
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
