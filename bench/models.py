"""The benchmark's models and request bodies, generated from fixed seeds.

Two pipelines with the shape users serve (a DataFrameMapper over numeric and
categorical columns, then a classifier). In "linear" the classifier costs next
to nothing, so a call costs what the mapper does (a fixed overhead per column
and call, whatever the rows); "heavy" adds a 100-iteration gradient boosting,
whose cost grows with the rows and which uses OpenMP threads unless limited.
Both are packed with ``service.control.packing.pack``, the path a real artifact takes,
so the servers load what they would in production.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from service.control import packing
from service.model import compat

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402  (needs the shim first)

NUMERIC = tuple(f"f{i}" for i in range(8))
CATEGORICAL: dict[str, tuple[str, ...]] = {
    "c0": tuple(f"a{i}" for i in range(5)),
    "c1": tuple(f"b{i}" for i in range(8)),
}
TRAIN_ROWS = 5_000
TRAIN_SEED = 7
BODY_SEED = 1_000
"""Request rows come from other seeds than the training rows, as real traffic would."""

MIX_SIZES = range(1, 101)
"""Scenario D sends one pre-built body of each size, chosen uniformly: 50.5 rows on average."""

CLASSIFIERS: dict[str, Callable[[], ClassifierMixin]] = {
    "linear": LogisticRegression,
    "heavy": lambda: HistGradientBoostingClassifier(max_iter=100, random_state=0),
}


def columns(rows: int, seed: int) -> dict[str, list[Any]]:
    """Rows in the API's columns layout, JSON-native; the same rows for the same seed."""
    rng = np.random.default_rng(seed)
    data: dict[str, list[Any]] = {
        name: rng.normal(0, 1 + i, rows).round(4).tolist() for i, name in enumerate(NUMERIC)
    }
    for name, levels in CATEGORICAL.items():
        data[name] = rng.choice(levels, rows).tolist()
    return data


def frame(rows: int, seed: int = BODY_SEED) -> pd.DataFrame:
    """What a server builds from :func:`body` (``pd.DataFrame(data)``), for in-process runs."""
    return pd.DataFrame(columns(rows, seed))


def body(rows: int, seed: int = BODY_SEED) -> bytes:
    """A ``POST /model/predict`` body of ``rows`` rows."""
    return orjson.dumps({"data": columns(rows, seed)})


def mixed_bodies() -> list[tuple[int, bytes]]:
    """(rows, body) for every size of :data:`MIX_SIZES`, each from its own seed."""
    return [(rows, body(rows, BODY_SEED + rows)) for rows in MIX_SIZES]


def mixed_frames() -> list[pd.DataFrame]:
    """The frames of :func:`mixed_bodies`, for in-process runs."""
    return [frame(rows, BODY_SEED + rows) for rows in MIX_SIZES]


def rows_label(rows: int | None) -> str:
    """How reports name a request size; None is the 1-100 mix."""
    if rows is None:
        return f"{MIX_SIZES.start}-{MIX_SIZES.stop - 1} rows"
    return "1 row" if rows == 1 else f"{rows:,} rows"


def labels(features: pd.DataFrame, seed: int) -> np.ndarray:
    """A target with linear, interaction and categorical effects, so both models learn."""
    rng = np.random.default_rng(seed)
    numeric = features[list(NUMERIC)].to_numpy() / (1 + np.arange(len(NUMERIC)))
    score = numeric @ rng.normal(0, 1, len(NUMERIC)) + numeric[:, 0] * numeric[:, 1]
    for name, levels in CATEGORICAL.items():
        effect = dict(zip(levels, rng.normal(0, 0.5, len(levels)), strict=True))
        score += features[name].map(effect).to_numpy()
    return (score + rng.normal(0, 0.5, len(features)) > 0).astype(int)


def mapper() -> DataFrameMapper:
    """The numeric columns scaled together (one transformer), each categorical one-hot.

    One scaler for the eight numeric columns is how such mappers are usually written,
    and it gives the 2.5-3 ms one-row predict typical of such a pipeline; a
    scaler per column would triple the fixed cost and flatter batching.
    """
    return DataFrameMapper(
        [(list(NUMERIC), StandardScaler())]
        + [([name], OneHotEncoder(handle_unknown="ignore")) for name in CATEGORICAL]
    )


def build(out_dir: Path, names: Iterable[str] = tuple(CLASSIFIERS)) -> dict[str, Path]:
    """Train and pack the named models into ``out_dir/<name>/``; returns each artifact's path."""
    features = frame(TRAIN_ROWS, TRAIN_SEED)
    target = labels(features, TRAIN_SEED)
    paths = {}
    for name in names:
        pipeline = Pipeline([("mapper", mapper()), ("classifier", CLASSIFIERS[name]())])
        pipeline.fit(features, target)
        paths[name], _ = packing.pack(pipeline, features.head(200), out_dir / name)
    return paths


def load(artifact: Path) -> Pipeline:
    """Unpickle an artifact built by :func:`build` (the shim is installed: see the imports)."""
    with artifact.open("rb") as handle:
        return pickle.load(handle)
