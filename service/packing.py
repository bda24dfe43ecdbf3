"""Packing a fitted pipeline for serving: check it, infer its schema, prove it predicts.

``python -m service pack`` and training scripts (``pack(pipeline, sample, out)``)
share this one path, so what the server loads was checked the same way.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

from service import artifact, contract, payload, schema

ARTIFACT_NAME = "pipeline.pkl"


def _atomic_write(path: Path, data: bytes) -> None:
    """Write, fsync, rename: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; nginx's user must read artifacts
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _sample_columns(sample: pd.DataFrame, names: tuple[str, ...]) -> dict[str, list[Any]]:
    """The sample as a client would send it: JSON-native values, nulls as None."""
    return {
        name: [schema._native(v) for v in sample[name].astype(object).tolist()] for name in names
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
    target = out_dir / ARTIFACT_NAME
    _atomic_write(target.with_suffix(".schema.json"), schema.dumps(packed))
    _atomic_write(target, cloudpickle.dumps(checked))
    return target, packed


def load_pickle(path: Path) -> Any:
    """Unpickle a pipeline an operator hands to ``pack`` (trusted by being on their disk)."""
    return artifact.unpickle(artifact.read_bytes(path), source=path)[0]
