"""Compiling the first step: each DataFrameMapper entry or ColumnTransformer part to a block.

A block names the request columns it reads and the op its transformer compiled to,
given the dtype kinds the schema promises for those columns. Only a DataFrameMapper,
or a ColumnTransformer fitted on a DataFrame, is compiled: anything else in the first
step, or any entry the plan cannot mirror, makes the whole model fall back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MaxAbsScaler, MinMaxScaler, RobustScaler, StandardScaler

from service.model import compat
from service.model.plan.base import NUMERIC, Compiled, Flow, Unsupported, type_name
from service.model.plan.features import Block, Features
from service.model.plan.transformers import compile_transformer
from service.model.schema import Column, Schema

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402  (needs the shim first)

KINDS = {"number": "f", "integer": "i", "boolean": "b", "string": "U"}
"""Numpy dtype kind of a validated column; "U" stands for text in an object array."""


def _interleaved_kinds(kinds: Sequence[frozenset[str]]) -> tuple[frozenset[str], ...]:
    """The dtype kinds of ``frame[names].values``: the static counterpart of the
    interleaving in :mod:`~service.model.plan.features`, for several columns."""
    if len(kinds) <= 1:
        return tuple(kinds)
    union = frozenset().union(*kinds)
    if union <= frozenset("iuf") or union in ({"b"}, {"U"}):
        return (union,) * len(kinds)
    return (frozenset("O"),) * len(kinds)


def _column_kinds(column: Column) -> frozenset[str]:
    if column.nullable and column.kind == "integer":
        return frozenset("if")  # payload turns an integer column with nulls into floats
    if column.nullable and column.kind == "boolean":
        return frozenset("bO")  # and leaves a boolean one as objects holding None
    return frozenset(KINDS[column.kind])


def _range_hints(names: Sequence[str], transformer: Any) -> dict[str, tuple[float, float]]:
    """Where each numeric column's fitted values lay, from the first scaler that saw it:
    the range :func:`verify` samples across and beyond. Only a hint, so never an error."""
    while isinstance(transformer, Pipeline) and transformer.steps:
        transformer = transformer.steps[0][1]
    t = transformer
    try:
        if isinstance(t, MinMaxScaler):
            low, high = t.data_min_, t.data_max_
        elif isinstance(t, StandardScaler | RobustScaler):
            center = t.mean_ if isinstance(t, StandardScaler) else t.center_
            spread = 3 * (t.scale_ if t.scale_ is not None else np.abs(center) + 1)
            low, high = center - spread, center + spread
        elif isinstance(t, MaxAbsScaler):
            low, high = -t.max_abs_, t.max_abs_
        else:
            return {}
        pairs = zip(names, np.asarray(low, float), np.asarray(high, float), strict=True)
        return {n: (float(lo), float(hi)) for n, lo, hi in pairs if np.isfinite([lo, hi]).all()}
    except (AttributeError, TypeError, ValueError):
        return {}


def _schema_columns(schema: Schema, names: Sequence[str]) -> list[Column]:
    by_name = {c.name: c for c in schema.columns}
    absent = [n for n in names if n not in by_name]
    if absent:
        raise Unsupported(f"reads columns the schema lacks: {absent}")
    return [by_name[n] for n in names]


def _mapper_block(mapper: Any, feature: Sequence[Any], schema: Schema, label: str) -> Block:
    cols, transformer = feature[0], feature[1]
    options = feature[2] if len(feature) > 2 else {}
    single = isinstance(cols, str)
    if not (single or (isinstance(cols, list) and all(isinstance(c, str) for c in cols))):
        raise Unsupported(f"column selector {cols!r} is not a name or a list of names")
    if options.get("input_df", mapper.input_df):
        raise Unsupported("input_df=True hands the transformer a DataFrame")
    names = (cols,) if single else tuple(cols)
    kinds = [_column_kinds(c) for c in _schema_columns(schema, names)]
    flow = Flow(kinds=_interleaved_kinds(kinds), ndim=1 if single else 2)
    return Block(names, single, compile_transformer(transformer, flow), label)


def _compile_mapper(name: str, mapper: Any, schema: Schema) -> Features:
    if mapper.df_out:
        raise Unsupported("df_out=True hands the next step a DataFrame", step=name)
    if mapper.default is not None and mapper.default is not False:
        raise Unsupported("a default transformer for unselected columns", step=name)
    features = getattr(mapper, "built_features", None) or mapper.features
    blocks, ranges = [], {}
    for index, feature in enumerate(features):
        label = f"{name}[{index}] {feature[0]!r} ({type_name(feature[1])})"
        try:
            blocks.append(_mapper_block(mapper, feature, schema, label))
        except Unsupported as exc:
            raise Unsupported(exc.reason, step=label) from None
        ranges.update(_range_hints(blocks[-1].names, feature[1]))
    if mapper.default is None:
        selected = {n for b in blocks for n in b.names} | set(mapper.drop_cols)
        rest = tuple(n for n in schema.names if n not in selected)
        kinds = _interleaved_kinds([_column_kinds(c) for c in _schema_columns(schema, rest)])
        passthrough = Compiled(lambda x: x, Flow(kinds=kinds), "passthrough")
        blocks.append(Block(rest, False, passthrough, f"{name}[default] {list(rest)!r}"))
    if not blocks:
        raise Unsupported("the mapper selects no columns", step=name)
    any_sparse = any(b.compiled.flow.sparse for b in blocks)
    return _features(
        f"{name} (DataFrameMapper)", blocks, schema, bool(mapper.sparse and any_sparse), ranges
    )


def _ct_names(ct: ColumnTransformer, cols: Any) -> tuple[str, ...]:
    """A ColumnTransformer's column specification as names (it selects by name when
    fitted and called on DataFrames, mapping positions through ``feature_names_in_``)."""
    if isinstance(cols, str) or callable(cols):
        raise Unsupported(f"column selector {cols!r} (a bare name or a callable)")
    if isinstance(cols, slice):
        if not all(v is None or isinstance(v, int) for v in (cols.start, cols.stop, cols.step)):
            raise Unsupported(f"column selector {cols!r}")
        return tuple(str(n) for n in ct.feature_names_in_[cols])
    array = np.asarray(cols)
    if array.size == 0:
        return ()
    if array.dtype.kind in "iub":
        return tuple(str(n) for n in ct.feature_names_in_[array])
    if all(isinstance(c, str) for c in array.tolist()):
        return tuple(array.tolist())
    raise Unsupported(f"column selector {cols!r}")


def _compile_column_transformer(name: str, ct: Any, schema: Schema) -> Features:
    config = getattr(ct, "_sklearn_output_config", {}).get("transform")
    if config not in (None, "default"):
        raise Unsupported(f"set_output(transform={config!r})", step=name)
    if ct.transformer_weights:
        raise Unsupported("transformer_weights", step=name)
    blocks, ranges = [], {}
    for part, transformer, cols in ct.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        label = f"{name}[{part!r}] ({type_name(transformer)})"
        try:
            names = _ct_names(ct, cols)
            if not names:
                continue
            kinds = tuple(_column_kinds(c) for c in _schema_columns(schema, names))
            flow = Flow(kinds=kinds, frame=True)
            blocks.append(Block(names, False, compile_transformer(transformer, flow), label))
        except Unsupported as exc:
            raise Unsupported(exc.reason, step=label) from None
        ranges.update(_range_hints(names, transformer))
    return _features(f"{name} (ColumnTransformer)", blocks, schema, bool(ct.sparse_output_), ranges)


def _features(
    label: str,
    blocks: list[Block],
    schema: Schema,
    is_sparse: bool,
    ranges: dict[str, tuple[float, float]],
) -> Features:
    read = {n for b in blocks for n in b.names}
    inputs = tuple((c.name, c.kind) for c in schema.columns if c.name in read)
    kinds = [k for b in blocks for k in b.compiled.flow.kinds]
    union = frozenset().union(*kinds)
    # numpy, not pandas, stacks the blocks: booleans with numbers make numbers
    column = union if union <= NUMERIC or union == {"U"} else frozenset("O")
    flow = Flow(kinds=(column,) * len(kinds), sparse=is_sparse)
    return Features(label, tuple(blocks), inputs, is_sparse, flow, ranges)


def compile_first(name: str, first: Any, schema: Schema) -> Features:
    """The first step as blocks; by exact type, as transformers are, since a subclass
    may select or stack its columns otherwise."""
    if type(first) is DataFrameMapper:
        return _compile_mapper(name, first, schema)
    if type(first) is ColumnTransformer and hasattr(first, "feature_names_in_"):
        return _compile_column_transformer(name, first, schema)
    raise Unsupported("not a DataFrameMapper or a ColumnTransformer fitted on a DataFrame")
