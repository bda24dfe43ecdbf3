"""``LabelEncoder`` and ``LabelBinarizer`` used as feature encoders on one mapper column.

They take a single column (sklearn-pandas hands them a 1-D vector), and their answer
is where each value sits among the fitted classes. ``LabelBinarizer`` on numbers is
not compiled: there, scikit-learn's answer depends on whether the batch looks
continuous.
"""

from __future__ import annotations

from itertools import repeat
from typing import Any

import numpy as np

from service.model.plan.base import Compiled, Flow, Unsupported


def _one_column(flow: Flow) -> frozenset[str]:
    if flow.sparse or flow.width != 1:
        raise Unsupported("label encoders take exactly one dense column")
    return flow.kinds[0]


def _text_classes(classes: np.ndarray, kinds: frozenset[str]) -> list[str]:
    """Text classes as Python strings (fitted on pandas' str dtype they are numpy unicode,
    which compares with Python strings as they do among themselves)."""
    if classes.dtype.kind not in "OU" or not all(isinstance(c, str) for c in classes):
        raise Unsupported("its classes are not all text")
    if kinds != {"U"}:
        raise Unsupported("its classes are text but its input is not")
    return [str(c) for c in classes]


def label_encoder(t: Any, flow: Flow) -> Compiled:
    kinds, classes = _one_column(flow), t.classes_
    out = Flow(kinds=(frozenset("i"),), ndim=1)
    if classes.dtype.kind in "OU":
        index = {c: i for i, c in enumerate(_text_classes(classes, kinds))}

        def text_op(x: np.ndarray) -> np.ndarray:
            values = x.reshape(-1)
            try:
                return np.fromiter(map(index.__getitem__, values), np.intp, len(values))
            except (KeyError, TypeError) as exc:
                raise ValueError(f"y contains previously unseen labels: {exc}") from None

        return Compiled(text_op, out, "LabelEncoder")
    # column_or_1d casts the input to the classes' dtype first: so does the op below
    if classes.dtype.kind not in "if" or not kinds <= frozenset("if"):
        raise Unsupported(f"classes of dtype {classes.dtype} for input kinds {sorted(kinds)}")
    has_nan = classes.dtype.kind == "f" and bool(np.isnan(classes).any())

    def number_op(x: np.ndarray) -> np.ndarray:
        values = np.asarray(x.reshape(-1), dtype=classes.dtype)  # column_or_1d's cast
        known = np.isin(values, classes)
        if has_nan:
            known |= np.isnan(values)
        if not known.all():
            raise ValueError(f"y contains previously unseen labels: {values[~known][:5]}")
        return np.searchsorted(classes, values)

    return Compiled(number_op, out, "LabelEncoder")


def label_binarizer(t: Any, flow: Flow) -> Compiled:
    """Text classes only: for numbers, scikit-learn's answer depends on whether the batch
    looks continuous. Even for text the output width depends on the batch (a binarizer
    of two classes meeting a third value answers two columns), which is mirrored."""
    classes = _text_classes(t.classes_, _one_column(flow))
    if t.sparse_output or t.y_type_ not in ("binary", "multiclass"):
        raise Unsupported(f"sparse_output={t.sparse_output}, fitted on {t.y_type_} targets")
    pos, neg = int(t.pos_label), int(t.neg_label)
    switch = pos == 0
    if switch:
        pos = -neg
    ordered = sorted(classes)
    position = {c: i for i, c in enumerate(ordered)}
    reorder = [ordered.index(c) for c in classes] if ordered != classes else None
    count = len(classes)

    def op(x: np.ndarray) -> np.ndarray:
        values = x.reshape(-1)
        if not all(isinstance(v, str) for v in values):
            raise ValueError("LabelBinarizer received a missing or non-text label")
        binary = len(set(values)) <= 2 and count < 3
        if binary and count == 1:
            return np.zeros((len(values), 1), dtype=np.intp) + neg
        hits = np.fromiter(map(position.get, values, repeat(-1)), np.intp, len(values))
        out = np.zeros((len(values), count), dtype=np.intp)
        rows = np.flatnonzero(hits >= 0)
        out[rows, hits[rows]] = pos
        if neg != 0:
            out[out == 0] = neg
        if switch:
            out[out == pos] = 0
        if reorder is not None:
            out = out[:, reorder]
        return out[:, -1].reshape(-1, 1) if binary else out

    width = 1 if count <= 2 else count
    return Compiled(op, Flow(kinds=(frozenset("i"),) * width), "LabelBinarizer")
