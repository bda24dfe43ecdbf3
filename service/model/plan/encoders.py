"""``OneHotEncoder`` and ``OrdinalEncoder`` as table lookups, the tables asked of the encoder.

Rather than re-implement every option (``drop``, infrequent categories,
``unknown_value``, ``encoded_missing_value``), compiling asks the fitted encoder
what it answers for each category and for the special values (missing, unknown,
a column of nulls); at run time each value's code picks its row of the table.
This holds because, for these encoders, one value's output depends on nothing
else in the batch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.preprocessing import OneHotEncoder

from service.model.plan.base import NUMERIC, Compiled, Flow, Unsupported
from service.model.plan.features import text_nulls


@dataclass(frozen=True)
class _Lookup:
    """Where each value of one encoder feature sits in its table: the row of its category,
    else row ``size`` (missing: NaN), ``size + 1`` (unknown) or ``size + 2`` (None)."""

    size: int
    text: dict[str, int] | None
    order: np.ndarray
    sorted: np.ndarray

    def codes(self, values: np.ndarray) -> np.ndarray:
        missing, unknown, none = self.size, self.size + 1, self.size + 2
        if self.text is not None:
            # map() keeps the per-value work in C; the few values not found (unknown
            # text, nulls) get a second look
            found = map(self.text.get, values, repeat(unknown))
            codes = np.fromiter(found, dtype=np.intp, count=len(values))
            for i in np.flatnonzero(codes == unknown):
                value = values[i]
                if not isinstance(value, str):
                    codes[i] = none if value is None else missing
            return codes
        numbers = values.astype(np.float64) if values.dtype == object else values
        floating = numbers.dtype.kind == "f"
        if floating and np.isinf(numbers).any():
            raise ValueError("Input contains infinity or a value too large.")
        if len(self.sorted) == 0:
            codes = np.full(len(numbers), unknown, dtype=np.intp)
        else:
            at = np.minimum(np.searchsorted(self.sorted, numbers), len(self.sorted) - 1)
            codes = np.where(self.sorted[at] == numbers, self.order[at], unknown)
        if floating:
            codes[np.isnan(numbers)] = missing
        return codes


def _lookup(categories: np.ndarray, kinds: frozenset[str]) -> _Lookup:
    if categories.dtype.kind in NUMERIC:
        if not kinds <= NUMERIC:
            raise Unsupported("numeric categories for an input that is not numeric")
        values = categories.astype(np.float64)
        where = np.flatnonzero(~np.isnan(values))
        order = where[np.argsort(values[where], kind="stable")]
        return _Lookup(len(categories), None, order, values[order])
    if categories.dtype != object:
        raise Unsupported(f"categories of dtype {categories.dtype}")
    others = [c for c in categories if not isinstance(c, str)]
    if any(not (c is None or (isinstance(c, float) and math.isnan(c))) for c in others):
        raise Unsupported("categories mixing text and numbers")
    if kinds != {"U"}:
        raise Unsupported("text categories for an input that is not text")
    text = {c: i for i, c in enumerate(categories) if isinstance(c, str)}
    empty = np.empty(0, dtype=np.intp)
    return _Lookup(len(categories), text, empty, empty.astype(np.float64))


def _special_probes(lookup: _Lookup) -> list[tuple[Any, bool]]:
    """(value, alone) for the table's last rows: a missing value among others, an unknown
    one, and a missing value alone in its column (see :func:`text_nulls`)."""
    if lookup.text is not None:
        beside, alone = text_nulls()
        return [(beside, False), ("\x00plan-unknown-probe\x00", False), (alone, True)]
    unknown = float(lookup.sorted.max()) + 1.0 if len(lookup.sorted) else 0.0
    return [(np.nan, False), (unknown, False), (np.nan, True)]


def _probe_input(t: Any, columns: list[list[Any]], lookups: list[_Lookup]) -> Any:
    """A probe batch as the encoder receives its input: for one fitted on names
    (ColumnTransformer), a DataFrame built as the service builds its frame (text from
    lists, numbers from float arrays); else the mapper's single array."""
    names = getattr(t, "feature_names_in_", None)
    if names is not None:
        return pd.DataFrame(
            {
                name: values if lk.text is not None else np.asarray(values, dtype=np.float64)
                for name, values, lk in zip(names, columns, lookups, strict=True)
            }
        )
    if len({lk.text is None for lk in lookups}) > 1:
        raise Unsupported("mixed text and numeric features in one array")
    dtype = np.float64 if lookups[0].text is None else object
    return np.array(columns, dtype=dtype).T.copy()


def _dense(y: Any) -> np.ndarray:
    return y.toarray() if sparse.issparse(y) else np.asarray(y)


@dataclass(frozen=True)
class _Table:
    """One feature's output for each category, then for the special values (see
    :class:`_Lookup`); ``raises`` marks the rows scikit-learn refuses to encode."""

    values: np.ndarray
    raises: np.ndarray

    def take(self, codes: np.ndarray, feature: int) -> np.ndarray:
        if self.raises.any() and self.raises[codes].any():
            raise ValueError(f"Found unknown categories in column {feature} during transform")
        return self.values[codes]


def _probe_batch(base: list[list[Any]], j: int, probe: Any, alone: bool) -> list[list[Any]]:
    """Feature ``j`` at ``probe``, the others at their first category; unless ``alone``,
    after a row of first categories, so pandas infers the column's dtype as it would for
    a real batch (a null beside text, not a column of nulls)."""
    rows = 1 if alone else 2
    batch = [column[:1] * rows for column in base]
    batch[j] = [probe] if alone else [base[j][0], probe]
    return batch


def _encoder_tables(t: Any, lookups: list[_Lookup], widths: list[int]) -> list[_Table]:
    """Ask the fitted encoder itself what it answers for every category and for the
    special values of each feature. Its options (drop, infrequent categories,
    unknown_value, encoded_missing_value) are thereby reproduced, not re-implemented:
    for these encoders each value's output depends on nothing else in the batch."""
    categories = [list(c) for c in t.categories_]
    rows = max(len(c) for c in categories)
    base = [[c[i % len(c)] for i in range(rows)] for c in categories]
    known = _dense(t.transform(_probe_input(t, base, lookups)))
    if known.shape[1] != sum(widths):
        raise Unsupported("its output width does not match its fitted categories")
    edges = np.cumsum([0, *widths])
    tables = []
    for j, lookup in enumerate(lookups):
        specials, raises = [], []
        for probe, alone in _special_probes(lookup):
            batch = _probe_batch(base, j, probe, alone)
            try:
                specials.append(_dense(t.transform(_probe_input(t, batch, lookups)))[-1])
                raises.append(False)
            except (ValueError, TypeError, KeyError):
                specials.append(np.zeros(known.shape[1], dtype=known.dtype))
                raises.append(True)
        block = np.vstack([known[: len(categories[j])], *specials])[:, edges[j] : edges[j + 1]]
        flags = np.array([False] * lookup.size + raises)
        tables.append(_Table(np.ascontiguousarray(block), flags))
    return tables


def encoder(t: Any, flow: Flow) -> Compiled:
    if flow.ndim != 2 or flow.sparse:
        raise Unsupported("encoders take a dense 2-D input")
    if len(t.categories_) != flow.width:
        raise Unsupported(f"fitted on {len(t.categories_)} columns")
    lookups = [_lookup(np.asarray(c), k) for c, k in zip(t.categories_, flow.kinds, strict=True)]
    if isinstance(t, OneHotEncoder):
        widths = getattr(t, "_n_features_outs", None)
        if widths is None:
            raise Unsupported("this scikit-learn does not expose the one-hot output widths")
        widths = [int(w) for w in widths]
    else:
        widths = [1] * flow.width
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = _encoder_tables(t, lookups, widths)
    dtype_kind = tables[0].values.dtype.kind if tables else "f"

    def op(x: np.ndarray) -> np.ndarray:
        parts = [
            table.take(lookup.codes(x[:, j]), j)
            for j, (lookup, table) in enumerate(zip(lookups, tables, strict=True))
        ]
        return parts[0] if len(parts) == 1 else np.hstack(parts)

    out = Flow(
        kinds=(frozenset(dtype_kind),) * sum(widths),
        sparse=bool(getattr(t, "sparse_output", False)),
    )
    return Compiled(op, out, type(t).__name__)
