"""The benchmark's models and request bodies, generated from fixed seeds.

Three pipelines with the shape users serve (a DataFrameMapper over numeric and
categorical columns, then a classifier). "demo" is ``make run``'s demo model
(applicants: 3 numbers, 2 categories). "linear", the benchmark's own model, maps 8
numbers and 2 categories into a LogisticRegression, whose arithmetic costs next to
nothing: through the pipeline a call costs what the mapper does (a fixed overhead per
column and call, whatever the rows), through the compiled plan (issue 11) what the
arithmetic does. "heavy" has the same columns and a 100-iteration gradient boosting,
whose cost grows with the rows and which uses OpenMP threads unless limited. All are
packed with ``service.control.packing.pack``, the path a real artifact takes, so the
servers load what they would in production.
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

from service.cli import demo
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
NAMES = ("demo", *CLASSIFIERS)
DEFAULT = "linear"
"""The model the ablation, the cheap wins and the soak use."""


def bench_columns(rows: int, seed: int) -> dict[str, list[Any]]:
    """Rows of the linear and heavy models, in the API's columns layout, JSON-native."""
    rng = np.random.default_rng(seed)
    data: dict[str, list[Any]] = {
        name: rng.normal(0, 1 + i, rows).round(4).tolist() for i, name in enumerate(NUMERIC)
    }
    for name, levels in CATEGORICAL.items():
        data[name] = rng.choice(levels, rows).tolist()
    return data


def columns(rows: int, seed: int, model: str = DEFAULT) -> dict[str, list[Any]]:
    """Rows in the API's columns layout, JSON-native; the same rows for the same seed."""
    if model == "demo":
        applicants = demo.dataset(rows, seed)[0]
        return {name: applicants[name].tolist() for name in applicants.columns}
    return bench_columns(rows, seed)


def frame(rows: int, seed: int = BODY_SEED, model: str = DEFAULT) -> pd.DataFrame:
    """What a server builds from :func:`body` (``pd.DataFrame(data)``), for in-process runs."""
    return pd.DataFrame(columns(rows, seed, model))


def body(rows: int, seed: int = BODY_SEED, model: str = DEFAULT) -> bytes:
    """A ``POST /model/predict`` body of ``rows`` rows."""
    return orjson.dumps({"data": columns(rows, seed, model)})


def mixed_bodies(model: str = DEFAULT) -> list[tuple[int, bytes]]:
    """(rows, body) for every size of :data:`MIX_SIZES`, each from its own seed."""
    return [(rows, body(rows, BODY_SEED + rows, model)) for rows in MIX_SIZES]


def mixed_frames(model: str = DEFAULT) -> list[pd.DataFrame]:
    """The frames of :func:`mixed_bodies`, for in-process runs."""
    return [frame(rows, BODY_SEED + rows, model) for rows in MIX_SIZES]


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


def build(out_dir: Path, names: Iterable[str] = NAMES) -> dict[str, Path]:
    """Train and pack the named models into ``out_dir/<name>/``; returns each artifact's path."""
    paths = {}
    for name in names:
        if name == "demo":
            features, target = demo.dataset(TRAIN_ROWS, TRAIN_SEED)
            pipeline = demo.pipeline()
        else:
            features = frame(TRAIN_ROWS, TRAIN_SEED)
            target = labels(features, TRAIN_SEED)
            pipeline = Pipeline([("mapper", mapper()), ("classifier", CLASSIFIERS[name]())])
        pipeline.fit(features, target)
        paths[name], _ = packing.pack(pipeline, features.head(200), out_dir / name)
    return paths


def load(artifact: Path) -> Pipeline:
    """Unpickle an artifact built by :func:`build` (the shim is installed: see the imports)."""
    with artifact.open("rb") as handle:
        return pickle.load(handle)
