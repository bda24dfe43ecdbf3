"""Hostile and broken artifacts for the model-control tests, built as raw pickles."""

from __future__ import annotations

import pathlib
import pickle
import time
from pathlib import Path

import cloudpickle


class TouchOnLoad:
    """Unpickling this creates ``marker``: proof that the bytes were unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


class HangOnLoad:
    def __reduce__(self):
        return (time.sleep, (3600,))


class RaiseOnLoad:
    def __reduce__(self):
        return (int, ("unpickling this raises",))


def marker_pickle(marker: Path) -> bytes:
    return pickle.dumps(TouchOnLoad(marker))


def hanging_pickle() -> bytes:
    return pickle.dumps(HangOnLoad())


def raising_pickle() -> bytes:
    return pickle.dumps(RaiseOnLoad())


def not_a_pipeline() -> bytes:
    return cloudpickle.dumps({"weights": [1, 2, 3]})
