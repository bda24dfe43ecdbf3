"""``compile_plan`` beyond the first step: middle steps compile while they are known, and
from the first unknown one the plan hands its matrix to the original steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.preprocessing import (
    FunctionTransformer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    StandardScaler,
)

from service.model import payload, schema
from service.model.plan import Plan, compile_plan, verify
from tests.unit.model.plan.pipelines import (
    FRAME,
    Doubler,
    columns_for,
    compiled,
    fitted,
    mapper,
    reference,
)

MIDDLE: dict[str, Callable[[], list[Any]]] = {
    "StandardScaler": lambda: [StandardScaler()],
    "MinMaxScaler, MaxAbsScaler": lambda: [MinMaxScaler(), MaxAbsScaler()],
    "passthrough": lambda: ["passthrough"],
    "FunctionTransformer(tanh)": lambda: [FunctionTransformer(np.tanh)],
}


@pytest.mark.parametrize("steps", MIDDLE.values(), ids=MIDDLE.keys())
def test_middle_steps_compile(steps: Callable[[], list[Any]]) -> None:
    features = mapper((["b", "count"], None), (["color"], OneHotEncoder()))
    plan = compiled(fitted(features, *steps()))
    assert plan.handoff is None and plan.rest == ()


def test_an_unknown_middle_step_hands_off_to_the_original_steps() -> None:
    pipeline = fitted(
        mapper((["color"], OneHotEncoder())), StandardScaler(), Doubler(), MaxAbsScaler()
    )
    plan = compiled(pipeline)
    assert plan.handoff is not None and "'middle1' (Doubler)" in plan.handoff.step
    assert [type(s).__name__ for s in plan.rest] == ["Doubler", "MaxAbsScaler"]
    assert plan.describe()["handoff"]["reason"].startswith("no compiled form")


def test_the_plan_reads_plain_lists_and_says_when_it_cannot_be_verified() -> None:
    pipeline = fitted(mapper((["count", "b"], None), (["color"], OneHotEncoder())))
    sch, columns = columns_for(pipeline, rows=5)
    plan = compile_plan(pipeline, sch)
    assert isinstance(plan, Plan)
    lists = {name: list(values) for name, values in columns.items()}
    want, want_proba = reference(pipeline, columns, proba=True)
    np.testing.assert_array_equal(plan.predict(lists), want)
    np.testing.assert_allclose(plan.predict_proba(lists), want_proba, rtol=0, atol=1e-12)
    broken = verify(plan, pipeline, sch, sample={"a": [1.0]})  # the sample lacks columns
    assert not broken.accepted and broken.reason.startswith("verification failed")


def test_rows_the_pipeline_refuses_the_plan_refuses() -> None:
    """Nulls the schema allows but the model cannot take: both sides raise, so the
    service answers the same error whichever path serves."""
    pipeline = fitted(mapper((["count"], StandardScaler())))
    sch = schema.from_sample(pipeline, FRAME.assign(count=FRAME["gap"]))
    plan = compile_plan(pipeline, sch)
    assert isinstance(plan, Plan) and verify(plan, pipeline, sch).accepted
    columns = payload.validate(sch, {"a": [50.0, 60.0], "count": [1.0, None]}, unknown="ignore")
    with pytest.raises(ValueError, match="NaN"):
        plan.score(columns, proba=True)
