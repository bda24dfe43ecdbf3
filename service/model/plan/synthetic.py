"""The rows :func:`verify` tries: the packed sample, and rows generated from the schema.

Synthetic rows cover every category, numbers across, beyond and far beyond the
range the fitted statistics suggest, edges and tiny values, and, where the schema
allows them, nulls and unseen categories: the places a compiled op could part
ways with scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from service.model.schema import Column, Schema, native


def _numbers(rows: int, rng: np.random.Generator, bounds: tuple[float, float]) -> np.ndarray:
    """Values across the range, beyond it, far beyond it, on its edges, and tiny."""
    low, high = bounds
    if not low < high:
        low, high = low - 1 - abs(low), high + 1 + abs(high)
    span, big = high - low, max(1.0, abs(low), abs(high))
    pick = rng.random(rows)
    inside = rng.uniform(low, high, rows)
    side = rng.random(rows) < 0.5
    beyond = np.where(
        side, low - span * rng.uniform(0, 3, rows), high + span * rng.uniform(0, 3, rows)
    )
    far = rng.choice([-1.0, 1.0], rows) * big * 10 ** rng.uniform(2, 6, rows)
    edges = rng.choice([low, high, 0.0, (low + high) / 2], rows)
    tiny = rng.uniform(-1e-6, 1e-6, rows)
    levels = [pick < 0.55, pick < 0.75, pick < 0.85, pick < 0.95]
    return np.select(levels, [inside, beyond, far, edges], tiny)


def _known_values(
    column: Column, rows: int, rng: np.random.Generator, bounds: tuple[float, float]
) -> list[Any]:
    categories = [c for c in column.categories or () if c is not None]
    if categories:
        picks = rng.permutation(np.resize(np.arange(len(categories)), rows))
        return [categories[i] for i in picks]  # every category, when rows allow
    if column.kind == "string":
        return [f"text-{i}" for i in rng.integers(0, 20, rows)]
    if column.kind == "boolean":
        return [bool(v) for v in rng.random(rows) < 0.5]
    numbers = _numbers(rows, rng, bounds)
    if column.kind == "integer":
        return [int(v) for v in np.clip(np.round(numbers), -(2**52), 2**52)]
    return [float(v) for v in numbers]


def _unknown_value(column: Column, index: int) -> Any:
    numbers = [c for c in column.categories or () if isinstance(c, int | float)]
    if column.kind == "string" or not numbers:
        return f"unseen-{index % 7}"
    top = max(numbers) + 1 + index % 5
    return int(top) if column.kind == "integer" else float(top)


def synthetic_columns(
    schema: Schema,
    rows: int,
    *,
    rng: np.random.Generator,
    ranges: Mapping[str, tuple[float, float]],
    nulls: bool = False,
    unknowns: bool = False,
) -> dict[str, list[Any]]:
    """Raw request columns (JSON-native values) the schema accepts: every category,
    numbers across and beyond ``ranges``; with ``nulls``/``unknowns``, about a third of
    the nullable / open-category columns' values replaced by null / unseen categories."""
    columns = {}
    for column in schema.columns:
        values = _known_values(column, rows, rng, ranges.get(column.name, (-100.0, 100.0)))
        if unknowns and column.unknown_categories and column.categories is not None:
            for i in np.flatnonzero(rng.random(rows) < 0.35):
                values[i] = _unknown_value(column, int(i))
        if nulls and column.nullable:
            for i in [*np.flatnonzero(rng.random(rows) < 0.35), int(rng.integers(rows))]:
                values[int(i)] = None
        columns[column.name] = values
    return columns


def sample_columns(schema: Schema, sample: Any) -> dict[str, list[Any]]:
    """The packed sample as a client sends it: JSON-native values, nulls as None."""
    if isinstance(sample, pd.DataFrame):
        return {n: [native(v) for v in sample[n].astype(object).tolist()] for n in schema.names}
    return {n: list(sample[n]) for n in schema.names}


def sample_ranges(
    schema: Schema, sample: Mapping[str, list[Any]]
) -> dict[str, tuple[float, float]]:
    ranges = {}
    for column in schema.columns:
        numbers = [v for v in sample.get(column.name, ()) if isinstance(v, int | float)]
        if column.kind in ("number", "integer") and numbers:
            ranges[column.name] = (float(min(numbers)), float(max(numbers)))
    return ranges


def trial_batches(
    schema: Schema, sample: Mapping[str, list[Any]] | None, rows: int, ranges: Mapping, rng: Any
) -> list[tuple[str, dict[str, list[Any]]]]:
    """The named batches :func:`verify` runs, in order; the ones with nulls and unseen
    categories are smaller, and only made when the schema allows such values."""
    extra = max(50, rows // 10)
    batches = [] if sample is None else [("the sample", dict(sample))]
    batches.append(("synthetic rows", synthetic_columns(schema, rows, rng=rng, ranges=ranges)))
    if any(c.nullable for c in schema.columns):
        nulls = synthetic_columns(schema, extra, rng=rng, ranges=ranges, nulls=True)
        batches.append(("synthetic rows with nulls", nulls))
    if any(c.unknown_categories and c.categories for c in schema.columns):
        unknown = synthetic_columns(schema, extra, rng=rng, ranges=ranges, unknowns=True)
        batches.append(("synthetic rows with unseen categories", unknown))
    return batches
