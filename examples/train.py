"""Train a pipeline the way the server expects it, and save it with cloudpickle.

    .venv/bin/python examples/train.py my_pipeline.pkl
    make run MODEL=my_pipeline.pkl

The server needs a fitted scikit-learn Pipeline whose first step selects the
input columns by name (a sklearn_pandas.DataFrameMapper, or a ColumnTransformer)
and whose last step is an estimator. Its schema (columns, kinds, categories) is
read from the fitted steps; `python -m service pack` can record a richer one
from a sample of your data.
"""

import service.model.compat  # noqa: F401  (first: sklearn-pandas on current scikit-learn)

# isort: split
import sys

import cloudpickle
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn_pandas import DataFrameMapper

rng = np.random.default_rng(0)
customers = pd.DataFrame(
    {
        "tenure_months": rng.integers(1, 72, 500).astype(float),
        "monthly_fee": rng.uniform(10, 120, 500).round(2),
        "plan": rng.choice(["basic", "plus", "pro"], 500),
    }
)
churned = (customers["monthly_fee"] / customers["tenure_months"] > 2).astype(int)

features = DataFrameMapper(
    [
        (["tenure_months", "monthly_fee"], StandardScaler()),
        (["plan"], OneHotEncoder(handle_unknown="ignore")),
    ]
)
pipeline = Pipeline([("features", features), ("model", LogisticRegression())])
pipeline.fit(customers, churned)

with open(sys.argv[1] if len(sys.argv) > 1 else "my_pipeline.pkl", "wb") as out:
    cloudpickle.dump(pipeline, out)
