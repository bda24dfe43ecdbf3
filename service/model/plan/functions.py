"""``FunctionTransformer`` holding a one-argument numpy ufunc (``log1p``, ``sqrt``, ``tanh``).

An arbitrary function could do anything with a DataFrame; a ufunc acts elementwise,
so applying it to the array gives what it gives column by column, and its output
dtypes can be learnt once at compile time by calling it on one sample of each kind.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from service.model.plan.base import NUMERIC, Compiled, Flow, Unsupported

_KIND_SAMPLES = {"f": np.float64, "i": np.int64, "u": np.uint64, "b": np.bool_}


def _ufunc_kinds(func: np.ufunc, kinds: tuple[frozenset[str], ...]) -> tuple[frozenset[str], ...]:
    """The dtype kinds the ufunc makes of each column (log1p makes integers floats)."""
    try:
        return tuple(
            frozenset(func(np.zeros(1, _KIND_SAMPLES[k])).dtype.kind for k in column)
            for column in kinds
        )
    except TypeError as exc:
        raise Unsupported(f"func={func!r} refuses the input dtype: {exc}") from None


def function_transformer(t: Any, flow: Flow) -> Compiled:
    """Only a one-argument numpy ufunc (or identity): elementwise, so its output for an
    array equals the DataFrame's column by column when every column has one dtype."""
    func = t.func
    if t.kw_args:
        raise Unsupported("kw_args are not compiled")
    if func is None and not t.validate:
        return Compiled(lambda x: x, flow, "FunctionTransformer(identity)")
    if func is not None and not (isinstance(func, np.ufunc) and func.nin == func.nout == 1):
        raise Unsupported(f"func={func!r} is not a one-argument numpy ufunc")
    if flow.sparse or not all(kinds <= NUMERIC for kinds in flow.kinds):
        raise Unsupported("its input is sparse or not numeric")
    if flow.frame and len(set(flow.kinds)) > 1:
        raise Unsupported("it receives a DataFrame whose columns differ in dtype")
    if t.validate and flow.ndim != 2:
        raise Unsupported("validate=True on a 1-D vector")
    kinds = flow.kinds if func is None else _ufunc_kinds(func, flow.kinds)
    validate = bool(t.validate)

    def op(x: np.ndarray) -> np.ndarray:
        if validate and x.dtype.kind in "fc" and not np.isfinite(x).all():
            raise ValueError("Input X contains NaN or infinity.")
        return x if func is None else func(x)

    name = getattr(func, "__name__", "identity")
    return Compiled(op, Flow(kinds=kinds, ndim=flow.ndim), f"FunctionTransformer({name})")
