"""Which transformers the plan compiles: one compiler per class, looked up by exact type.

Exact types only, never ``isinstance``: a subclass may override ``transform``, and its
answer is then unknown. A new transformer is a compiler in the module of its kind and
one line in :data:`COMPILERS`; a nested ``Pipeline`` (or sklearn-pandas' list of
transformers) compiles as its steps in order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    LabelBinarizer,
    LabelEncoder,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)

from service.model import compat
from service.model.plan import encoders, functions, imputers, labels, scalers
from service.model.plan.base import Compiled, Flow, Unsupported, is_passthrough, type_name

compat.install()
from sklearn_pandas.pipeline import TransformerPipeline  # noqa: E402  (needs the shim first)

Compiler = Callable[[Any, Flow], Compiled]


def compile_transformer(transformer: Any, flow: Flow) -> Compiled:
    """The transformer as a numpy op, or Unsupported saying what is not handled."""
    if is_passthrough(transformer):
        return Compiled(lambda x: x, flow, "passthrough")
    config = getattr(transformer, "_sklearn_output_config", {}).get("transform")
    if config not in (None, "default"):
        raise Unsupported(f"{type_name(transformer)} outputs {config} containers")
    compiler = COMPILERS.get(type(transformer))
    if compiler is None:
        cls = type(transformer)
        raise Unsupported(f"no compiled form for {cls.__module__}.{cls.__qualname__}")
    return compiler(transformer, flow)


def _chain(t: Any, flow: Flow) -> Compiled:
    """A sklearn-pandas transformer list or a nested Pipeline: its steps in order."""
    compiled = []
    for name, step in t.steps:
        if is_passthrough(step):
            continue
        try:
            item = compile_transformer(step, flow)
        except Unsupported as exc:
            raise Unsupported(f"{name!r} ({type_name(step)}): {exc.reason}") from None
        compiled.append(item)
        flow = item.flow
    ops = tuple(item.op for item in compiled)

    def op(x: np.ndarray) -> np.ndarray:
        for step_op in ops:
            x = step_op(x)
        return x

    return Compiled(op, flow, " → ".join(item.label for item in compiled) or "passthrough")


COMPILERS: dict[type, Compiler] = {
    StandardScaler: scalers.standard_scaler,
    MinMaxScaler: scalers.min_max_scaler,
    MaxAbsScaler: scalers.max_abs_scaler,
    RobustScaler: scalers.robust_scaler,
    SimpleImputer: imputers.simple_imputer,
    FunctionTransformer: functions.function_transformer,
    LabelEncoder: labels.label_encoder,
    LabelBinarizer: labels.label_binarizer,
    OneHotEncoder: encoders.encoder,
    OrdinalEncoder: encoders.encoder,
    Pipeline: _chain,
    TransformerPipeline: _chain,
}
"""Transformer class -> its compiler. Anything else is Unsupported."""
