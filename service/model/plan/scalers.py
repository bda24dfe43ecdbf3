"""The scalers, as numpy ops in scikit-learn's order of floating-point operations.

Each one subtracts, multiplies or divides in place on a float copy of its input,
exactly as its ``transform`` does, so the answers are equal rather than close.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.model.plan.base import Compiled, Flow, float_flow, floats, require_numeric


def standard_scaler(t: Any, flow: Flow) -> Compiled:
    require_numeric(t, flow)
    mean = t.mean_ if t.with_mean else None
    scale = t.scale_ if t.with_std else None

    def op(x: np.ndarray) -> np.ndarray:
        y = floats(x)
        if mean is not None:
            y -= mean.astype(y.dtype, copy=False)
        if scale is not None:
            y /= scale.astype(y.dtype, copy=False)
        return y

    return Compiled(op, float_flow(flow), "StandardScaler")


def min_max_scaler(t: Any, flow: Flow) -> Compiled:
    require_numeric(t, flow)
    scale, offset, clip = t.scale_, t.min_, bool(t.clip)
    low, high = t.feature_range

    def op(x: np.ndarray) -> np.ndarray:
        y = floats(x)
        y *= scale
        y += offset
        if clip:
            np.clip(y, np.asarray(low, dtype=y.dtype), np.asarray(high, dtype=y.dtype), out=y)
        return y

    return Compiled(op, float_flow(flow), "MinMaxScaler")


def max_abs_scaler(t: Any, flow: Flow) -> Compiled:
    require_numeric(t, flow)
    scale, clip = t.scale_, bool(getattr(t, "clip", False))

    def op(x: np.ndarray) -> np.ndarray:
        y = floats(x)
        y /= scale
        if clip:
            np.clip(y, np.asarray(-1.0, dtype=y.dtype), np.asarray(1.0, dtype=y.dtype), out=y)
        return y

    return Compiled(op, float_flow(flow), "MaxAbsScaler")


def robust_scaler(t: Any, flow: Flow) -> Compiled:
    require_numeric(t, flow)
    center = t.center_ if t.with_centering else None
    scale = t.scale_ if t.with_scaling else None

    def op(x: np.ndarray) -> np.ndarray:
        y = floats(x)
        if center is not None:
            y -= center
        if scale is not None:
            y /= scale
        return y

    return Compiled(op, float_flow(flow), "RobustScaler")
