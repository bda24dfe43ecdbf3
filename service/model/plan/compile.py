"""``compile_plan``: the pipeline's steps, front to back, as far as they compile.

The first step must compile whole, or the model falls back; middle steps compile
while they are known, and from the first unknown one the plan hands its matrix to
the original steps; the estimator is computed directly or through its own predict.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sklearn

from service.model.plan.base import Compiled, Unsupported, type_name
from service.model.plan.columns import compile_first
from service.model.plan.core import Fallback, Handoff, Plan
from service.model.plan.estimators import compile_head, generic_head
from service.model.plan.features import text_nulls
from service.model.plan.transformers import compile_transformer
from service.model.schema import Schema


def _step_label(steps: Sequence[tuple[str, Any]], index: int) -> str:
    name, obj = steps[index]
    return f"step {index} {name!r} ({type_name(obj)})"


def compile_plan(pipeline: Any, schema: Schema) -> Plan | Fallback:
    """The pipeline as a plan, or a Fallback naming the first-step part it cannot compile.

    Middle steps compile while they are known; from the first unknown one the plan hands
    its matrix to the original steps (``Plan.handoff`` says where and why). Compiling
    never raises: whatever goes wrong is a reason to let the pipeline serve.
    """
    steps = list(pipeline.steps)
    config = sklearn.get_config().get("transform_output", "default")
    if config != "default":
        return Fallback("scikit-learn config", f"transform_output={config!r}", pipeline)
    try:
        text_nulls()  # pandas answers this once, here, never on the request path
        features = compile_first(steps[0][0], steps[0][1], schema)
    except Unsupported as exc:
        return Fallback(exc.step or _step_label(steps, 0), exc.reason, pipeline)
    except Exception as exc:
        return Fallback(_step_label(steps, 0), f"could not compile it: {exc!r}", pipeline)
    compiled: list[Compiled] = []
    flow, handoff, stop = features.flow, None, len(steps) - 1
    for index in range(1, len(steps) - 1):
        try:
            if flow.sparse:
                raise Unsupported("the first step outputs a sparse matrix")
            item = compile_transformer(steps[index][1], flow)
        except Exception as exc:
            reason = (
                exc.reason if isinstance(exc, Unsupported) else f"could not compile it: {exc!r}"
            )
            handoff, stop = Handoff(_step_label(steps, index), reason), index
            break
        compiled.append(item)
        flow = item.flow
    rest = tuple(step for _, step in steps[stop:-1])
    estimator = steps[-1][1]
    head = (
        generic_head(estimator, f"after the hand-off at {handoff.step}")
        if handoff is not None
        else compile_head(estimator, flow)
    )
    return Plan(features, tuple(compiled), rest, head, handoff)
