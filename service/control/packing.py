"""Packing a fitted pipeline for serving: check it, infer its schema, prove it predicts.

``python -m service pack`` and training scripts (``pack(pipeline, sample, out)``)
share this one path, so what the server loads was checked the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

from service.control.store import ARTIFACT, write_atomic
from service.model import artifact, contract, payload, schema


def _sample_columns(sample: pd.DataFrame, names: tuple[str, ...]) -> dict[str, list[Any]]:
    """The sample as a client would send it: JSON-native values, nulls as None."""
    return {
        name: [schema.native(v) for v in sample[name].astype(object).tolist()] for name in names
    }


def prove(pipeline: Any, packed: schema.Schema, sample: pd.DataFrame) -> None:
    """Raise unless the sample, sent as a client would, validates and predicts as in-process."""
    frame = payload.to_frame(packed, _sample_columns(sample, packed.names), unknown="ignore")
    served = np.asarray(pipeline.predict(frame))
    direct = np.asarray(pipeline.predict(sample))
    if not np.array_equal(served, direct):
        raise ValueError("predictions from validated input differ from predictions on the sample")


def pack(pipeline: Any, sample: pd.DataFrame, out_dir: Path) -> tuple[Path, schema.Schema]:
    """Check, prove and write ``pipeline.pkl`` and its schema into ``out_dir``."""
    checked = contract.check(pipeline)
    packed = schema.from_sample(checked, sample)
    prove(checked, packed, sample)
    target = out_dir / ARTIFACT
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(target.with_suffix(".schema.json"), schema.dumps(packed))
    write_atomic(target, cloudpickle.dumps(checked))
    return target, packed


def load_pickle(path: Path) -> Any:
    """Unpickle a pipeline an operator hands to ``pack`` (trusted by being on their disk)."""
    return artifact.unpickle(artifact.read_bytes(path), source=path)[0]
