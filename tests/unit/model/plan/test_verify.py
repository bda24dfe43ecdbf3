"""``verify`` and ``prepare``: a plan serves only after it matched the pipeline, and a
wrong one is caught, naming the output, the error and the row."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from service.model import schema
from service.model.plan import Compiled, Plan, compile_plan, prepare, verify
from tests.unit.model.plan.pipelines import (
    columns_for,
)


def _scaled(plan: Plan) -> Plan:
    step = Compiled(lambda x: x * (1 + 1e-9), plan.features.flow, "wrong on purpose")
    return dataclasses.replace(plan, steps=(step,))


def _flipped(plan: Plan) -> Plan:
    def run(x: Any, proba: bool) -> Any:
        labels, probabilities = plan.head.run(x, proba)
        return labels[::-1], probabilities

    return dataclasses.replace(plan, head=dataclasses.replace(plan.head, run=run))


@pytest.mark.parametrize(("spoil", "output"), [(_scaled, "probabilities"), (_flipped, "labels")])
def test_a_wrong_plan_is_discarded(
    spoil: Callable[[Plan], Plan], output: str, demo_pipeline: Pipeline, demo_data: Any
) -> None:
    sch = schema.from_sample(demo_pipeline, demo_data[0])
    plan = compile_plan(demo_pipeline, sch)
    assert isinstance(plan, Plan)
    verdict = verify(spoil(plan), demo_pipeline, sch)
    assert not verdict.accepted and verdict.output == output
    assert (
        output in verdict.reason and verdict.row is not None and set(verdict.row) == set(sch.names)
    )
    if output == "probabilities":
        assert verdict.max_error is not None and 1e-12 < verdict.max_error < 1e-6


def test_one_row_and_many_row_batches_agree(demo_pipeline: Pipeline, demo_data: Any) -> None:
    sch, columns = columns_for(demo_pipeline, demo_data[0], rows=300)
    plan = compile_plan(demo_pipeline, sch)
    assert isinstance(plan, Plan)
    labels, probabilities = plan.score(columns, proba=True)
    for row in range(300):
        one = {name: values[row : row + 1] for name, values in columns.items()}
        got, got_proba = plan.score(one, proba=True)
        assert got[0] == labels[row]
        # BLAS may move the last bit with the batch size, in scikit-learn as in the plan
        np.testing.assert_allclose(got_proba[0], probabilities[row], rtol=0, atol=1e-15)


def test_the_demo_pipeline_compiles_and_verifies_within_two_seconds(
    demo_pipeline: Pipeline, demo_data: Any
) -> None:
    sch = schema.from_sample(demo_pipeline, demo_data[0])
    plan = compile_plan(demo_pipeline, sch)
    assert isinstance(plan, Plan)
    described = plan.describe()
    assert described["path"] == "plan" and described["handoff"] is None
    assert described["estimator"] == "LogisticRegression: computed directly"
    started = time.perf_counter()
    verdict = verify(plan, demo_pipeline, sch, sample=demo_data[0])
    elapsed = time.perf_counter() - started
    assert verdict.accepted, verdict
    assert verdict.rows >= 2000 + len(demo_data[0])
    assert elapsed < 2.0
    served, accepted = prepare(demo_pipeline, sch)
    assert isinstance(served, Plan) and accepted.accepted
