"""The model zoo: the pipelines users serve, for the plan's report and the stack's equality test.

Each entry trains one pipeline on a fixed seed, from the demo and the benchmark's
models to a regressor, a tree ensemble, missing values through imputers, a
ColumnTransformer, a 100-column model and custom transformers the plan does not
know (one in the first step: the whole model falls back; one between the steps:
the plan hands its matrix to it). ``make bench`` reports per model how it is served
and how much faster the plan is in-process (:func:`speedups`);
``tests/integration/test_zoo.py`` sends each one's rows through nginx and gunicorn
and compares the answers with ``pipeline.predict`` in-process.

The custom transformers are defined here and pickled by value (cloudpickle), as a
user's would be from a training notebook, so the servers need not import this module.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    LabelBinarizer,
    MaxAbsScaler,
    MinMaxScaler,
    OneHotEncoder,
    OrdinalEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.svm import LinearSVC

from bench import models
from service.cli import demo
from service.control import packing
from service.model import compat, payload, predictor, schema

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402  (needs the shim first)

TRAIN_ROWS = 2_000
REQUEST_SEED = 4_242
WIDE = tuple(f"w{i:02d}" for i in range(100))
SPEEDUP_ROWS = (1, 1_000)


class Winsorize(TransformerMixin, BaseEstimator):
    """Clips each column to its 1st-99th percentile: a user's own transformer."""

    def fit(self, x: Any, y: Any = None) -> Winsorize:
        values = np.asarray(x, dtype=float)
        self.low_, self.high_ = np.nanpercentile(values, [1, 99], axis=0)
        return self

    def transform(self, x: Any) -> Any:
        return np.clip(np.asarray(x, dtype=float), self.low_, self.high_)


cloudpickle.register_pickle_by_value(sys.modules[__name__])


@dataclass(frozen=True)
class Entry:
    """One zoo model: how to get its training rows, its pipeline, and how it should serve."""

    name: str
    title: str
    data: Callable[[int, int], tuple[pd.DataFrame, Any]]
    """(rows, seed) -> the feature frame and the target."""
    pipeline: Callable[[], Pipeline]
    serves: str
    """``plan`` or ``fallback``: what the plan must make of it (the tests hold it to this)."""


def _bench_data(rows: int, seed: int) -> tuple[pd.DataFrame, Any]:
    features = models.frame(rows, seed)
    return features, models.labels(features, seed)


def _regression_data(rows: int, seed: int) -> tuple[pd.DataFrame, Any]:
    features = models.frame(rows, seed)
    rng = np.random.default_rng(seed)
    numeric = features[list(models.NUMERIC)].to_numpy()
    target = numeric @ rng.normal(0, 1, numeric.shape[1]) + (features["c0"] == "a1") * 2.0
    return features, target + rng.normal(0, 0.1, rows)


def _missing_data(rows: int, seed: int) -> tuple[pd.DataFrame, Any]:
    """The benchmark's rows with a tenth of f0-f5 missing, and c0 missing now and then.

    Missing text is NaN, as ``read_csv`` and the service's own frames hold it: an object
    column holding None would train a different pipeline (SimpleImputer masks NaN only,
    encoders learn None as a category of its own).
    """
    features, target = _bench_data(rows, seed)
    rng = np.random.default_rng(seed + 1)
    for name in models.NUMERIC[:6]:
        features.loc[rng.random(rows) < 0.1, name] = np.nan
    features.loc[rng.random(rows) < 0.05, "c0"] = np.nan
    return features, target


def _wide_data(rows: int, seed: int) -> tuple[pd.DataFrame, Any]:
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 1, (rows, len(WIDE))).round(4)
    weights = np.random.default_rng(0).normal(0, 1, len(WIDE))
    return pd.DataFrame(values, columns=list(WIDE)), (values @ weights > 0).astype(int)


def _numeric_mapper(scaler: Callable[[], Any]) -> list[tuple[Any, Any]]:
    return [(list(models.NUMERIC), scaler())]


def _categorical(encoder: Callable[[], Any]) -> list[tuple[Any, Any]]:
    return [([name], encoder()) for name in models.CATEGORICAL]


def _mapper_pipeline(entries: list[tuple[Any, Any]], *steps: tuple[str, Any]) -> Pipeline:
    return Pipeline([("mapper", DataFrameMapper(entries)), *steps])


ZOO: tuple[Entry, ...] = (
    Entry(
        "demo",
        "the demo: scalers, one-hot (ignore, error), LogisticRegression",
        lambda rows, seed: demo.dataset(rows, seed),
        demo.pipeline,
        "plan",
    ),
    Entry(
        "bench",
        "the benchmark's: 8 scaled numbers, 2 one-hot, LogisticRegression",
        _bench_data,
        lambda: Pipeline([("mapper", models.mapper()), ("classifier", LogisticRegression())]),
        "plan",
    ),
    Entry(
        "regressor",
        "RobustScaler, MinMaxScaler chain, ordinal + one-hot, Ridge",
        _regression_data,
        lambda: _mapper_pipeline(
            [(list(models.NUMERIC[:4]), RobustScaler())]
            + [(list(models.NUMERIC[4:]), [MinMaxScaler(), StandardScaler()])]
            + [(["c0"], OrdinalEncoder()), (["c1"], OneHotEncoder(handle_unknown="ignore"))],
            ("regressor", Ridge(alpha=0.5)),
        ),
        "plan",
    ),
    Entry(
        "forest",
        "a tree ensemble: RandomForestClassifier, 50 trees summed by the plan",
        _bench_data,
        lambda: _mapper_pipeline(
            _numeric_mapper(StandardScaler)
            + _categorical(lambda: OneHotEncoder(handle_unknown="ignore")),
            ("classifier", RandomForestClassifier(50, max_depth=8, random_state=0, n_jobs=1)),
        ),
        "plan",
    ),
    Entry(
        "imputer",
        "missing values: SimpleImputer chains, LabelBinarizer, log1p, SGDClassifier",
        _missing_data,
        lambda: _mapper_pipeline(
            [(list(models.NUMERIC[:3]), [SimpleImputer(strategy="median"), StandardScaler()])]
            + [(list(models.NUMERIC[3:6]), [SimpleImputer(), MaxAbsScaler()])]
            + [(["f6"], [FunctionTransformer(np.abs), FunctionTransformer(np.log1p)])]
            + [(["f7"], None)]
            + [
                (
                    ["c0"],
                    [
                        SimpleImputer(strategy="constant", fill_value="missing"),
                        OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=50),
                    ],
                ),
                ("c1", LabelBinarizer()),
            ],
            ("classifier", SGDClassifier(loss="log_loss", random_state=0)),
        ),
        "plan",
    ),
    Entry(
        "custom-first",
        "a user's transformer in the mapper: the whole model falls back to the pipeline",
        _bench_data,
        lambda: _mapper_pipeline(
            [(list(models.NUMERIC), [Winsorize(), StandardScaler()])]
            + _categorical(lambda: OneHotEncoder(handle_unknown="ignore")),
            ("classifier", LogisticRegression()),
        ),
        "fallback",
    ),
    Entry(
        "custom-middle",
        "a user's transformer between the steps: the plan hands its matrix to it",
        _bench_data,
        lambda: _mapper_pipeline(
            _numeric_mapper(StandardScaler)
            + _categorical(lambda: OneHotEncoder(handle_unknown="ignore")),
            ("winsorize", Winsorize()),
            ("classifier", LogisticRegression()),
        ),
        "plan",
    ),
    Entry(
        "column-transformer",
        "a ColumnTransformer: scaler, one-hot (drop first), LinearSVC",
        _bench_data,
        lambda: Pipeline(
            [
                (
                    "columns",
                    ColumnTransformer(
                        [
                            ("numbers", StandardScaler(), list(models.NUMERIC)),
                            ("levels", OneHotEncoder(drop="first"), list(models.CATEGORICAL)),
                        ]
                    ),
                ),
                ("classifier", LinearSVC(random_state=0)),
            ]
        ),
        "plan",
    ),
    Entry(
        "wide",
        "100 numeric columns, one StandardScaler, LogisticRegression",
        _wide_data,
        lambda: _mapper_pipeline(
            [(list(WIDE), StandardScaler())], ("classifier", LogisticRegression(max_iter=500))
        ),
        "plan",
    ),
)
BY_NAME = {entry.name: entry for entry in ZOO}


def build(entry: Entry, out_dir: Path) -> Path:
    """Train the entry's pipeline and pack it into ``out_dir`` (as ``make bench`` would)."""
    features, target = entry.data(TRAIN_ROWS, models.TRAIN_SEED)
    pipeline = entry.pipeline().fit(features, target)
    path, _ = packing.pack(pipeline, features.head(200), out_dir)
    return path


def request_frame(entry: Entry, rows: int, seed: int = REQUEST_SEED) -> pd.DataFrame:
    """Rows a client would send (other seeds than training), as a frame."""
    return entry.data(rows, seed)[0]


def request_columns(frame: pd.DataFrame) -> dict[str, list[Any]]:
    """The frame in the API's columns layout, JSON-native, missing values as null."""
    return {
        name: [schema.native(value) for value in frame[name].astype(object).tolist()]
        for name in frame.columns
    }


@dataclass(frozen=True)
class ZooResult:
    """One model's line in the report."""

    name: str
    title: str
    path: str
    """``plan`` or ``fallback``, with the step it hands off at or falls back on."""
    reason: str
    verified_rows: int
    verify_s: float
    speedup: dict[int, tuple[float, float]]
    """rows -> (pipeline path ms, served path ms) per call of ``Model.score``."""


ROUNDS = 7


def _calls_in(call: Callable[[], object], seconds: float) -> int:
    """How many calls take about ``seconds`` (at least 3), after one warm-up call."""
    call()
    started, calls = time.perf_counter(), 0
    while time.perf_counter() - started < seconds or calls < 3:
        call()
        calls += 1
    return calls


def _round_ms(call: Callable[[], object], calls: int) -> float:
    began = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - began) / calls * 1000


def per_call_ms(
    pipeline: Callable[[], object], served: Callable[[], object], seconds: float
) -> tuple[float, float]:
    """Milliseconds per call of each side: the best of :data:`ROUNDS` rounds, the sides
    taking turns, so a neighbour's burst on this shared machine slows both, not one."""
    share = seconds / (2 * ROUNDS)
    sides = [(pipeline, _calls_in(pipeline, share)), (served, _calls_in(served, share))]
    best = [float("inf"), float("inf")]
    for _ in range(ROUNDS):
        for index, (call, calls) in enumerate(sides):
            best[index] = min(best[index], _round_ms(call, calls))
    return best[0], best[1]


def measure(entry: Entry, artifact: Path, seconds: float) -> ZooResult:
    """How the entry serves, and the served path's speed against the pipeline path in
    process (``Model.score`` on validated columns, as a worker calls it)."""
    began = time.perf_counter()
    fast = predictor.load(artifact, fast_path=True)
    verify_s = time.perf_counter() - began
    slow = predictor.load(artifact, fast_path=False)
    speedup = {}
    for rows in SPEEDUP_ROWS:
        raw = request_columns(request_frame(entry, rows))
        columns = payload.validate(fast.schema, raw, unknown="ignore")
        speedup[rows] = per_call_ms(
            partial(slow.score, columns, proba=slow.has_proba),
            partial(fast.score, columns, proba=fast.has_proba),
            seconds,
        )
    path = fast.serving_path
    where = f" at {path.step}" if path.step else ""
    return ZooResult(
        entry.name,
        entry.title,
        path.path + where,
        path.reason or "",
        fast.verdict.rows if fast.verdict else 0,
        verify_s,
        speedup,
    )


def run(out_dir: Path, seconds: float) -> list[ZooResult]:
    """Build every zoo model into ``out_dir`` and measure it."""
    return [measure(entry, build(entry, out_dir / entry.name), seconds) for entry in ZOO]
