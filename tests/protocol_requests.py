"""One DataFrame as each protocol sends it: shared by the route tests, the stack tests and
the benchmark, so all of them speak the protocols the same way."""

from __future__ import annotations

from typing import Any

import pandas as pd

DATATYPES = {"f": "FP64", "i": "INT64", "u": "INT64", "b": "BOOL"}
"""numpy's dtype kinds as tensor datatypes; anything else (text) is BYTES."""


def v2_inputs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One tensor per column, as MLServer's pandas codec sends a DataFrame."""
    return [
        {
            "name": name,
            "datatype": DATATYPES.get(frame[name].dtype.kind, "BYTES"),
            "shape": [len(frame)],
            "data": frame[name].tolist(),
        }
        for name in frame.columns
    ]


def v2_infer(frame: pd.DataFrame, outputs: tuple[str, ...] = ()) -> dict[str, Any]:
    body: dict[str, Any] = {"id": "test", "inputs": v2_inputs(frame)}
    if outputs:
        body["outputs"] = [{"name": name} for name in outputs]
    return body


def mlflow_bodies(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every JSON layout MLflow's scoring server documents, for the same rows."""
    records = frame.to_dict(orient="records")
    split = frame.to_dict(orient="split")
    return {
        "dataframe_split": {
            "dataframe_split": {"columns": split["columns"], "data": split["data"]}
        },
        "dataframe_records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": frame.to_dict(orient="list")},
    }


def csv_body(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)
