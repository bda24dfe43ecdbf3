"""Which code serves a model's predictions: its compiled plan, verified, or its pipeline.

``predictor.load`` asks :func:`prepare` for the plan (remembering verdicts per artifact,
so a swap back to an earlier version does not verify it again) and :func:`describe`
says the outcome the way ``GET /model``, the store's records and the ``model_info``
metric show it.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from service.model import schema
from service.model.plan import Fallback, Plan, Verdict
from service.model.plan import prepare as prepare_plan


class ServingPath(BaseModel):
    """How this model's predictions are computed.

    ``plan``: the pipeline compiled to numpy operations (``service.model.plan``), verified
    against the pipeline at load. ``fallback``: the pipeline, because no plan could be built
    or it failed verification; ``step`` and ``reason`` say where and why. ``pipeline``: the
    pipeline, because ``FAST_PATH=false``.
    """

    model_config = ConfigDict(use_attribute_docstrings=True)

    path: Literal["plan", "fallback", "pipeline"]
    step: str | None = None
    """Fallback: the step the plan could not compile, or ``verification``. Plan: the step
    from which the original steps run on the plan's matrix (a partial plan), if any."""
    reason: str | None = None
    detail: dict[str, Any] | None = None
    """Plan: what it compiled to and how much verification ran. Fallback after
    verification: where the plan and the pipeline parted (output, error, input row)."""


VERDICTS: OrderedDict[tuple[str, str], Verdict] = OrderedDict()
"""This process's verdicts, per artifact sha256 and schema, most recent last: verifying
costs ~0.2 s a load, and the same artifact loads again on a swap back to an earlier
version (and many times over in the tests), which then skips reverification. A verdict
depends only on the artifact's bytes, its schema and the installed libraries."""
VERDICTS_KEPT = 32


def prepare(
    pipeline: Any, model_schema: schema.Schema, sha256: str
) -> tuple[Plan | Fallback, Verdict]:
    """The plan, verified on the packed example row (the schema file's, when there is one)
    and synthetic rows, or the Fallback saying why the pipeline serves."""
    key = (sha256, hashlib.sha256(schema.dumps(model_schema)).hexdigest())
    sample = None
    if model_schema.source == "schema file":  # packing keeps the sample's first row
        sample = {name: [value] for name, value in model_schema.example.items()}
    compiled, verdict = prepare_plan(
        pipeline, model_schema, sample=sample, verdict=VERDICTS.get(key)
    )
    VERDICTS[key] = verdict
    VERDICTS.move_to_end(key)
    while len(VERDICTS) > VERDICTS_KEPT:
        VERDICTS.popitem(last=False)
    return compiled, verdict


def describe(plan: Plan | Fallback | None, verdict: Verdict | None) -> ServingPath:
    """What serves, and why: a verified plan (and where it hands off to original steps),
    a fallback (the step, the reason, and where verification parted), or the pipeline."""
    if isinstance(plan, Plan):
        assert verdict is not None  # a plan serves only once verified
        detail = {k: v for k, v in plan.describe().items() if k != "path"}
        reason, handoff = verdict.reason, plan.handoff
        if handoff is not None:
            reason += f"; from this step the original steps run ({handoff.reason})"
        return ServingPath(
            path="plan",
            step=None if handoff is None else handoff.step,
            reason=reason,
            detail={**detail, "verified_rows": verdict.rows},
        )
    if isinstance(plan, Fallback):
        mismatch = None
        if verdict is not None and verdict.output is not None:
            keys = ("output", "max_error", "batch", "row")
            mismatch = {k: v for k, v in verdict.describe().items() if k in keys}
        return ServingPath(path="fallback", step=plan.step, reason=plan.reason, detail=mismatch)
    return ServingPath(path="pipeline", reason="the fast path is off (FAST_PATH=false)")
