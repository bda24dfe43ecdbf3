"""``verify`` and ``prepare``: the plan serves only after it matched the pipeline everywhere.

Each batch (see :mod:`~service.model.plan.synthetic`) runs whole, then as single
rows and smaller slices, each slice compared with the pipeline's answer for that
same slice (see :mod:`~service.model.plan.compare`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from sklearn.base import is_regressor

from service.errors import ServiceError
from service.model import payload
from service.model.plan.base import Columns, Outputs
from service.model.plan.compare import Mismatch, outcomes_agree
from service.model.plan.compile import compile_plan
from service.model.plan.core import Fallback, Plan, pipeline_outputs
from service.model.plan.synthetic import sample_columns, sample_ranges, trial_batches
from service.model.schema import Schema


@dataclass(frozen=True)
class Verdict:
    """Whether a plan may serve: it matched the pipeline everywhere it was tried, or where
    it did not (which output, the largest error, the input row)."""

    accepted: bool
    reason: str
    rows: int = 0
    seconds: float = 0.0
    output: str | None = None
    max_error: float | None = None
    row: dict[str, Any] | None = None
    batch: str | None = None
    notes: tuple[str, ...] = ()

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def _attempt(call: Callable[..., Outputs], *args: Any, **kwargs: Any) -> Outputs | Exception:
    try:
        return call(*args, **kwargs)
    except Exception as exc:  # either side may refuse a batch; both must agree on it
        return exc


def _slice(columns: Columns, start: int, stop: int) -> dict[str, Any]:
    return {name: values[start:stop] for name, values in columns.items()}


def _slices(
    rows: int, rng: np.random.Generator, singles: int, batches: int
) -> Iterator[tuple[int, int]]:
    """Single rows, then batches of assorted sizes, at random places in the batch."""
    sizes = [1] * singles + [int(rng.choice([2, 7, 31, 128, 500])) for _ in range(batches)]
    for size in sizes:
        size = min(size, rows)
        start = int(rng.integers(0, rows - size + 1))
        yield start, start + size


def _check_batch(
    plan: Plan,
    pipeline: Any,
    columns: Columns,
    rows: int,
    rng: np.random.Generator,
    *,
    slices: tuple[int, int],
) -> tuple[Mismatch, str] | None:
    """Plan beside pipeline on the whole batch, then on single rows and smaller batches
    cut from it. Each slice is compared with the pipeline's answer for that same slice:
    scikit-learn's own answer for a row may move in the last bits with the batch around
    it (BLAS blocks the product differently), and the plan must match what it answers."""
    proba, continuous = plan.has_proba, is_regressor(pipeline.steps[-1][1])
    singles, batches = slices
    for start, stop in [(0, rows), *_slices(rows, rng, singles, batches)]:
        part = columns if stop - start == rows else _slice(columns, start, stop)
        expected = _attempt(pipeline_outputs, pipeline, part, proba=proba)
        found = outcomes_agree(expected, _attempt(plan.score, part, proba=proba), continuous)
        if found is not None:
            moved = Mismatch(found.output, found.detail, found.row + start, found.max_error)
            return moved, f"a batch of {stop - start} rows"
        if stop - start == rows and isinstance(expected, Exception):
            return None  # both refuse the batch: its slices say nothing more
    return None


def verify(
    plan: Plan | Fallback,
    pipeline: Any,
    schema: Schema,
    sample: Any = None,
    rows: int = 2000,
    seed: int = 0,
) -> Verdict:
    """Run the plan beside the pipeline: on the sample (a DataFrame or raw columns) if
    given, on ``rows`` synthetic rows, and on smaller batches with nulls and unseen
    categories where the schema allows them; each batch whole, then single rows and
    slices of it. Labels must be identical, continuous outputs within
    :data:`~service.model.plan.compare.TOLERANCE`, and a batch one side refuses the
    other must refuse too. Never raises: a failure to verify discards the plan."""
    started = time.perf_counter()
    if isinstance(plan, Fallback):
        return Verdict(False, f"no plan to verify: {plan.reason}")
    try:
        return _verify(plan, pipeline, schema, sample, rows, seed, started)
    except Exception as exc:  # a bug here must not let an unchecked plan serve
        return Verdict(
            False, f"verification failed: {exc!r}", seconds=time.perf_counter() - started
        )


def _verify(
    plan: Plan, pipeline: Any, schema: Schema, sample: Any, rows: int, seed: int, started: float
) -> Verdict:
    rng = np.random.default_rng(seed)
    raw_sample = None if sample is None else sample_columns(schema, sample)
    ranges = {**plan.ranges, **(sample_ranges(schema, raw_sample) if raw_sample else {})}
    checked, notes = 0, []
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for label, raw in trial_batches(schema, raw_sample, rows, ranges, rng):
            try:
                columns = payload.validate(schema, raw, unknown="ignore")
            except ServiceError as exc:
                notes.append(f"{label} skipped: {exc.message}")
                continue
            count = len(next(iter(raw.values()), ()))
            slices = (6, 6) if label == "synthetic rows" else (2, 2)
            found = _check_batch(plan, pipeline, columns, count, rng, slices=slices)
            if found is not None:
                mismatch, where = found
                return Verdict(
                    accepted=False,
                    reason=f"{mismatch.output} differ on {label}, {where}: {mismatch.detail}",
                    rows=checked + count,
                    seconds=time.perf_counter() - started,
                    output=mismatch.output,
                    max_error=mismatch.max_error,
                    row={name: values[mismatch.row] for name, values in raw.items()},
                    batch=f"{label}, {where}",
                    notes=tuple(notes),
                )
            checked += count
    return Verdict(
        accepted=True,
        reason=f"the plan matches the pipeline on {checked} rows",
        rows=checked,
        seconds=time.perf_counter() - started,
        notes=tuple(notes),
    )


def prepare(
    pipeline: Any, schema: Schema, *, sample: Any = None, verdict: Verdict | None = None
) -> tuple[Plan | Fallback, Verdict]:
    """Compile and verify: the plan when it matched the pipeline, else the Fallback that
    says which step or which verification failure keeps the pipeline serving.

    ``verdict``, one already reached for this same artifact and schema, stands in for
    verifying again (compiling is milliseconds; verifying is most of a load's cost)."""
    compiled = compile_plan(pipeline, schema)
    if verdict is None:
        verdict = verify(compiled, pipeline, schema, sample=sample)
    if isinstance(compiled, Plan) and not verdict.accepted:
        return Fallback("verification", verdict.reason, pipeline), verdict
    return compiled, verdict
