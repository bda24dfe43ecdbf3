"""The yardstick: the Flask app a newcomer writes first to serve a pickled pipeline.

Kept deliberately naive (no validation, stdlib JSON, a DataFrame built straight
from the request) so the benchmark shows what our service gains or costs
against the obvious alternative. Do not improve it. Run under gunicorn:
``MODEL_PATH=... gunicorn -w 2 -b 127.0.0.1:8001 bench.naive_app:app``.
"""

from __future__ import annotations

import os
import pickle

import pandas as pd
from flask import Flask, Response, jsonify, request

from service.model import compat

compat.install()  # the pickle references sklearn_pandas, which needs the shim
with open(os.environ["MODEL_PATH"], "rb") as handle:
    pipeline = pickle.load(handle)

app = Flask(__name__)


@app.post("/model/predict")
def predict() -> Response:
    frame = pd.DataFrame(request.get_json()["data"])
    return jsonify({"predictions": pipeline.predict(frame).tolist()})


@app.get("/readyz")
def readyz() -> str:
    return "ok"
