"""The model's input schema: which columns it reads, of what kind, with which categories.

Two sources, in order of authority: the ``<stem>.schema.json`` written by
``python -m service pack`` (dtypes, nullability and an example row taken from
real data), else what the fitted first step reveals (column names from the
mapper or ``feature_names_in_``, categories from fitted encoders).
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from service.errors import ArtifactUnreadable

KINDS = ("number", "integer", "boolean", "string")
ENCODER_CLASSES = ("OneHotEncoder", "OrdinalEncoder", "LabelBinarizer", "LabelEncoder")


@dataclass(frozen=True)
class Column:
    """One input column. ``categories`` is None when any value of the kind is accepted."""

    name: str
    kind: str = "number"
    nullable: bool = False
    categories: tuple[Any, ...] | None = None
    unknown_categories: bool = False
    """Whether values outside ``categories`` are accepted (the encoder ignores them)."""


@dataclass(frozen=True)
class Schema:
    """The columns a request must carry, plus the example row used for warm-up and docs."""

    columns: tuple[Column, ...]
    example: dict[str, Any]
    source: str
    packed: dict[str, str] = field(default_factory=dict)
    """Versions and time the artifact was packed with (from the schema file), if known."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": [_column_json(c) for c in self.columns],
            "example": self.example,
            "packed": self.packed,
        }


def _column_json(column: Column) -> dict[str, Any]:
    data = asdict(column)
    data["categories"] = None if column.categories is None else list(column.categories)
    return data


def native(value: Any) -> Any:
    """A numpy or pandas scalar as the JSON-native Python value; every missing marker
    (NaN of any float width, ``pd.NA``, ``NaT``) is ``None``, since JSON has no NaN."""
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


# ---- inferring from the fitted pipeline -------------------------------------------------


def _encoders(transformer: Any) -> list[Any]:
    """Every fitted encoder inside a transformer, a list of them, or a pipeline of them."""
    if isinstance(transformer, list | tuple):
        return [e for t in transformer for e in _encoders(t)]
    if isinstance(transformer, Pipeline):
        return [e for _, step in transformer.steps for e in _encoders(step)]
    return [transformer] if type(transformer).__name__ in ENCODER_CLASSES else []


def _categories(encoder: Any, position: int) -> tuple[Any, ...] | None:
    cats = getattr(encoder, "categories_", None)
    if cats is not None and position < len(cats):
        return tuple(native(v) for v in cats[position])
    classes = getattr(encoder, "classes_", None)
    return None if classes is None else tuple(native(v) for v in classes)


def _columns_for(names: list[str], transformer: Any) -> list[Column]:
    encoders = _encoders(transformer)
    if not encoders:
        return [Column(name) for name in names]
    encoder = encoders[0]
    tolerant = getattr(encoder, "handle_unknown", "error") != "error"
    columns = []
    for position, name in enumerate(names):
        cats = _categories(encoder, position)
        # a missing value among the categories (None, from NaN) is one the encoder
        # learnt: the column's kind is that of the others, and null is a valid input
        is_text = cats is not None and all(isinstance(v, str) for v in cats if v is not None)
        columns.append(
            Column(
                name,
                kind="string" if is_text or cats is None else "number",
                nullable=cats is not None and None in cats,
                categories=cats,
                unknown_categories=tolerant,
            )
        )
    return columns


def _mapper_entries(first: Any) -> list[tuple[list[str], Any]]:
    """(column names, transformer) for each feature of a DataFrameMapper or ColumnTransformer."""
    if isinstance(first, ColumnTransformer):
        entries = []
        for _, transformer, cols in first.transformers_:
            if transformer == "drop":
                continue
            entries.append(([str(n) for n in _selected(first, cols)], transformer))
        return entries
    return [
        ([cols] if isinstance(cols, str) else list(cols), transformer)
        for cols, transformer, *_ in first.features
    ]


def _selected(first: ColumnTransformer, cols: Any) -> list[Any]:
    """The column names a ColumnTransformer entry selects, in every form scikit-learn takes:
    one name (a text vectorizer's column), names, positions, a mask, or a slice of either."""
    if isinstance(cols, str):
        return [cols]
    if not isinstance(cols, slice) and not _is_index(cols):
        return list(cols)
    names = list(first.feature_names_in_)
    if isinstance(cols, slice):
        start = names.index(cols.start) if isinstance(cols.start, str) else cols.start
        # A slice of names includes its end, as in pandas' .loc.
        stop = names.index(cols.stop) + 1 if isinstance(cols.stop, str) else cols.stop
        return names[slice(start, stop, cols.step)]
    return list(np.asarray(names)[cols])


def _is_index(cols: Any) -> bool:
    array = np.asarray(cols)
    return array.dtype.kind in "iub"


def _passed_through(first: Any) -> list[str]:
    """The columns a DataFrameMapper with ``default=None`` passes through untouched.

    The fitted mapper does not record its input columns: ``fit`` keeps nothing of the
    unselected ones. Its ``transform`` (which ``Pipeline.fit`` runs, as
    ``fit_transform``) writes ``transformed_names_``, kept in the pickle: each entry's
    output names, then the passed-through columns under their own names. They are what
    remains once each entry's names, as the mapper's own ``get_names`` spells them, are
    matched in order; when the names do not parse, none are inferred.
    """
    if isinstance(first, ColumnTransformer) or getattr(first, "default", False) is not None:
        return []
    names = list(getattr(first, "transformed_names_", None) or [])
    start = 0
    for feature in getattr(first, "built_features", None) or first.features:
        width = _entry_width(first, feature, names[start:])
        if width is None:
            return []
        start += width
    rest = names[start:]
    read = {n for cols, _ in _mapper_entries(first) for n in cols} | set(first.drop_cols)
    if len(set(rest)) < len(rest) or any(not isinstance(n, str) or n in read for n in rest):
        return []
    return rest


def _entry_width(mapper: Any, feature: Any, names: list[str]) -> int | None:
    """How many of ``names`` one mapper entry wrote: the longest run spelled as its
    ``get_names`` spells that many output columns (it needs their count only)."""
    columns, transformer, *rest = feature
    options = rest[0] if rest else {}
    alias = options.get("alias")
    prefix, suffix = options.get("prefix", ""), options.get("suffix", "")
    joined = columns if isinstance(columns, str) else "_".join(map(str, columns))
    stem = prefix + (joined if alias is None else alias)
    run = next((i for i, n in enumerate(names) if not str(n).startswith(stem)), len(names))
    for width in range(run, 0, -1):
        try:
            spelled = mapper.get_names(
                columns, transformer, np.empty((0, width)), alias, prefix, suffix
            )
        except (AttributeError, TypeError, ValueError):  # a transformer's own names failed
            return None
        if names[:width] == list(spelled):
            return width
    return None


def infer(pipeline: Pipeline) -> Schema:
    """The schema the fitted first step reveals; numeric unless an encoder says otherwise."""
    seen: dict[str, Column] = {}
    first = pipeline.steps[0][1]
    for names, transformer in _mapper_entries(first):
        for column in _columns_for(names, transformer):
            seen.setdefault(column.name, column)
    for name in _passed_through(first):
        seen.setdefault(name, Column(name))
    columns = tuple(seen.values())
    return Schema(columns=columns, example=example_row(columns), source="pipeline")


def example_row(columns: tuple[Column, ...]) -> dict[str, Any]:
    """A plausible row: the first known category, else a zero of the column's kind."""
    zeros: dict[str, Any] = {"number": 0.0, "integer": 0, "boolean": False, "string": ""}
    return {c.name: c.categories[0] if c.categories else zeros[c.kind] for c in columns}


# ---- inferring from a sample, as `pack` does ---------------------------------------------


def kind_of(dtype: Any) -> str:
    """The JSON kind a pandas dtype accepts."""
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    return "string"


def from_sample(pipeline: Pipeline, sample: pd.DataFrame) -> Schema:
    """Refine the pipeline's schema with the sample's dtypes, nulls and first row."""
    base = infer(pipeline)
    missing = [name for name in base.names if name not in sample.columns]
    if missing:
        raise ValueError(f"the sample lacks columns the model reads: {missing}")
    columns = tuple(
        Column(
            c.name,
            kind=kind_of(sample[c.name].dtype) if c.categories is None else c.kind,
            nullable=c.nullable or bool(sample[c.name].isna().any()),
            categories=c.categories,
            unknown_categories=c.unknown_categories,
        )
        for c in base.columns
    )
    first = sample.iloc[0]
    example = {c.name: native(first[c.name]) for c in columns}
    packed = {
        "sklearn": sklearn.__version__,
        "python": platform.python_version(),
        "packed_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    return Schema(columns=columns, example=example, source="schema file", packed=packed)


# ---- the schema file -----------------------------------------------------------------------


def dumps(schema: Schema) -> bytes:
    """The schema file's content."""
    return (json.dumps(schema.to_json(), indent=2) + "\n").encode()


def load(path: Path) -> Schema:
    """Read a schema file written from :func:`dumps`; a broken one is an unreadable artifact."""
    try:
        raw = json.loads(path.read_text())
        columns = tuple(
            Column(
                name=c["name"],
                kind=c["kind"],
                nullable=bool(c["nullable"]),
                categories=None if c.get("categories") is None else tuple(c["categories"]),
                unknown_categories=bool(c.get("unknown_categories", False)),
            )
            for c in raw["columns"]
        )
        bad = [c.name for c in columns if c.kind not in KINDS]
        if bad:
            raise ValueError(f"unknown kind for columns {bad}")
        return Schema(
            columns=columns, example=raw["example"], source="schema file", packed=raw["packed"]
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactUnreadable(f"schema file {path} is invalid: {exc}") from exc
