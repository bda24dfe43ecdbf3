"""The contract a served pipeline must keep, checked before anything is served.

A ``Pipeline`` whose first step selects features by column name (a
sklearn-pandas ``DataFrameMapper``, or a ``ColumnTransformer`` fitted on a
DataFrame), whose middle steps transform and whose last step predicts. Each
violation names the offending step, so an operator knows what to fix.
"""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from service.errors import ContractViolation
from service.model import compat

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402  (needs the shim first)


def _step_label(steps: list[tuple[str, Any]], index: int) -> str:
    name, obj = steps[index]
    return f"step {index} {name!r} ({type(obj).__name__})"


def is_mapper(step: Any) -> bool:
    """True for the column-selecting first steps the service knows how to read."""
    return isinstance(step, DataFrameMapper) or (
        isinstance(step, ColumnTransformer) and hasattr(step, "feature_names_in_")
    )


def check(obj: Any) -> Pipeline:
    """Return ``obj`` as a pipeline that keeps the contract, or raise naming what breaks it."""
    if not isinstance(obj, Pipeline):
        raise ContractViolation(
            f"the artifact is a {type(obj).__module__}.{type(obj).__name__}, "
            "not a scikit-learn Pipeline"
        )
    steps = list(obj.steps)
    if len(steps) < 2:
        raise ContractViolation(
            f"the pipeline has {len(steps)} step(s); it needs a mapper first and an estimator last"
        )
    first = steps[0][1]
    if not is_mapper(first):
        raise ContractViolation(
            f"{_step_label(steps, 0)} is not a sklearn_pandas.DataFrameMapper "
            "(or a ColumnTransformer fitted on a DataFrame), so features cannot be "
            "selected by column name"
        )
    for index in range(1, len(steps) - 1):
        step = steps[index][1]
        if step == "passthrough" or step is None:
            continue
        if not hasattr(step, "transform"):
            raise ContractViolation(
                f"{_step_label(steps, index)} has no transform(); middle steps must transform"
            )
    if not hasattr(steps[-1][1], "predict"):
        raise ContractViolation(
            f"{_step_label(steps, len(steps) - 1)} has no predict(); the last step must predict"
        )
    return obj
