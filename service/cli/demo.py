"""The demo model: a credit-approval classifier on data generated with a fixed seed.

It has the shape users serve (a DataFrameMapper over numeric and categorical
columns, then a classifier with ``predict_proba``), so ``make run`` shows every
feature of the API without anyone's private model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from service.model import compat

compat.install()
from sklearn_pandas import DataFrameMapper  # noqa: E402  (needs the shim first)

REGIONS = ("north", "south", "east", "west")
EMPLOYMENT = ("salaried", "self-employed", "unemployed")


def dataset(rows: int = 2_000, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    """Applicants and whether they were approved; the same rows for the same seed."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "age": rng.integers(18, 80, rows),
            "income": rng.lognormal(10.5, 0.5, rows).round(2),
            "debt_ratio": rng.uniform(0, 1, rows).round(3),
            "region": rng.choice(REGIONS, rows),
            "employment": rng.choice(EMPLOYMENT, rows, p=[0.6, 0.3, 0.1]),
        }
    )
    score = (
        np.log(frame["income"]) / 11
        - frame["debt_ratio"]
        + 0.004 * (frame["age"] - 40)
        - 0.8 * (frame["employment"] == "unemployed")
        + 0.1 * (frame["region"] == "north")
        + rng.normal(0, 0.15, rows)
    )
    labels = pd.Series(np.where(score > 0.45, "approved", "declined"), name="decision")
    return frame, labels


def train(frame: pd.DataFrame, labels: pd.Series) -> Pipeline:
    return pipeline().fit(frame, labels)


def pipeline() -> Pipeline:
    """The demo's pipeline, unfitted (the benchmark's model zoo trains it too)."""
    mapper = DataFrameMapper(
        [
            (["age"], StandardScaler()),
            (["income"], StandardScaler()),
            (["debt_ratio"], StandardScaler()),
            (["region"], OneHotEncoder(handle_unknown="ignore")),
            (["employment"], OneHotEncoder(handle_unknown="error")),
        ]
    )
    return Pipeline([("mapper", mapper), ("classifier", LogisticRegression())])
