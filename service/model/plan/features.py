"""The compiled first step at run time: request columns to the matrix the next step gets.

The op of each mapper entry or ColumnTransformer part must see the very array pandas
would have handed the transformer, dtype and nulls included, or its answer could
differ in the last bit. So the columns are converted here as the service's frame
holds them (text nulls as NaN or None, integer nulls as floats), selected as
``frame[names].values`` interleaves them, and the blocks' outputs stacked as
sklearn-pandas and ColumnTransformer stack them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from scipy import sparse

from service.model import payload
from service.model.plan.base import Columns, Compiled, Flow


@dataclass(frozen=True)
class Block:
    """One mapper entry or ColumnTransformer part: select columns, then run its op."""

    names: tuple[str, ...]
    single: bool
    """Selected by a bare name: the op receives a 1-D vector, as sklearn-pandas does."""
    compiled: Compiled
    label: str


@dataclass(frozen=True)
class Features:
    """The compiled first step: request columns to the matrix the next step receives."""

    label: str
    blocks: tuple[Block, ...]
    inputs: tuple[tuple[str, str], ...]
    """(column, schema kind) of every column read, to convert each one once per call."""
    sparse: bool
    flow: Flow
    ranges: Mapping[str, tuple[float, float]]
    """Plausible numeric range per column, from fitted statistics, for :func:`verify`."""

    def __call__(self, columns: Columns) -> Any:
        arrays = {name: _as_array(columns[name], kind) for name, kind in self.inputs}
        rows = _row_count(columns, arrays)
        parts = [_as_2d(b.compiled.op(_select(arrays, b, rows))) for b in self.blocks]
        matrix = np.hstack(parts) if parts else np.zeros((rows, 0))
        return sparse.csr_matrix(matrix) if self.sparse else matrix


@cache
def text_nulls() -> tuple[Any, Any]:
    """What a null text value becomes in the service's frame: beside text (NaN under
    pandas' str dtype), and in a batch where the column holds nulls only (None: pandas
    then infers an object column). Encoders tell NaN from None, so the plan must too."""
    beside = payload.build_frame({"s": ["x", None]})[["s"]].to_numpy()[1, 0]
    alone = payload.build_frame({"s": [None]})[["s"]].to_numpy()[0, 0]
    return beside, alone


def _as_array(values: Any, kind: str) -> np.ndarray:
    """One validated column as the array its frame column yields."""
    if kind == "string":
        items = values.tolist() if isinstance(values, np.ndarray) else list(values)
        if None in items:
            beside, alone = text_nulls()
            null = alone if all(v is None for v in items) else beside
            items = [null if v is None else v for v in items]
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array
    if isinstance(values, np.ndarray):
        return values
    if any(v is None for v in values):  # what payload and pandas make of nulls
        if kind == "boolean":
            array = np.empty(len(values), dtype=object)
            array[:] = list(values)
            return array
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return np.asarray(values)


def _row_count(columns: Columns, arrays: Mapping[str, np.ndarray]) -> int:
    for array in arrays.values():
        return len(array)
    for values in columns.values():
        return len(values)
    raise ValueError("no columns to count rows from")


def _interleaved(dtypes: Sequence[np.dtype]) -> np.dtype:
    """The dtype of ``frame[names].values``: pandas keeps one dtype, else mixes into
    object when booleans or objects take part, else takes numpy's common type."""
    if all(d == dtypes[0] for d in dtypes):
        return dtypes[0]
    if any(d.kind in "bO" for d in dtypes):
        return np.dtype(object)
    return np.result_type(*dtypes)


def _select(arrays: Mapping[str, np.ndarray], block: Block, rows: int) -> np.ndarray:
    if block.single:
        return arrays[block.names[0]]
    parts = [arrays[name] for name in block.names]
    if not parts:
        return np.empty((rows, 0))
    if len(parts) == 1:
        return parts[0].reshape(-1, 1)
    out = np.empty((rows, len(parts)), dtype=_interleaved([p.dtype for p in parts]))
    for index, part in enumerate(parts):
        out[:, index] = part
    return out


def _as_2d(array: np.ndarray) -> np.ndarray:
    """sklearn-pandas' ``_handle_feature``: a vector becomes one column."""
    return array.reshape(-1, 1) if array.ndim == 1 else array
