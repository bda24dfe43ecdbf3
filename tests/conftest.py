"""Fixtures shared by unit and integration tests: tiny pipelines trained in temp folders.

Pipelines are trained here rather than committed, as MLServer's sklearn runtime
tests do, so the tests always exercise the scikit-learn that is installed.
"""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from service.cli import demo
from service.control import packing
from tests.estimators import Shift


@pytest.fixture(scope="session")
def demo_data() -> tuple[pd.DataFrame, pd.Series]:
    return demo.dataset(rows=400, seed=3)


@pytest.fixture(scope="session")
def demo_pipeline(demo_data: tuple[pd.DataFrame, pd.Series]) -> Pipeline:
    return demo.train(*demo_data)


@pytest.fixture(scope="session")
def model_path(tmp_path_factory: pytest.TempPathFactory, demo_pipeline, demo_data) -> Path:
    """The demo classifier packed with its schema file (DataFrameMapper first)."""
    target, _ = packing.pack(demo_pipeline, demo_data[0], tmp_path_factory.mktemp("demo"))
    return target


@pytest.fixture(scope="session")
def regressor_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ColumnTransformer + Ridge regressor pickled bare: no schema file, so it is inferred."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "size": rng.uniform(20, 200, 120),
            "rooms": rng.integers(1, 6, 120).astype(float),
            "city": rng.choice(["paris", "lyon", "nice"], 120),
        }
    )
    target = frame["size"] * 10 + frame["rooms"] * 3
    first = ColumnTransformer(
        [
            ("num", StandardScaler(), ["size", "rooms"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    pipeline = Pipeline([("columns", first), ("ridge", Ridge())]).fit(frame, target)
    path = tmp_path_factory.mktemp("regressor") / "pipeline.pkl"
    path.write_bytes(cloudpickle.dumps(pipeline))
    return path


@pytest.fixture(scope="session")
def custom_pipeline(demo_data: tuple[pd.DataFrame, pd.Series]) -> Pipeline:
    """The demo data through a custom transformer (``Shift``): no plan compiles it."""
    first = ColumnTransformer(
        [
            ("scale", StandardScaler(), ["age", "income"]),
            ("shift", Shift(), ["debt_ratio"]),
            ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    model = LogisticRegression(max_iter=1000)
    return Pipeline([("columns", first), ("clf", model)]).fit(*demo_data)


@pytest.fixture(scope="session")
def custom_path(
    tmp_path_factory: pytest.TempPathFactory, custom_pipeline: Pipeline, demo_data
) -> Path:
    """That pipeline packed with its schema file."""
    target, _ = packing.pack(custom_pipeline, demo_data[0], tmp_path_factory.mktemp("custom"))
    return target


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/integration/ drives real processes: mark it so, by folder,
    so `-m "not integration"` selects the unit suite whatever a module declares."""
    integration = Path(__file__).parent / "integration"
    for item in items:
        if item.path.is_relative_to(integration):
            item.add_marker(pytest.mark.integration)
