"""Compatibility shim that lets sklearn-pandas 2.2.0 import on current scikit-learn.

sklearn-pandas 2.2.0 (its last release, 2021) does ``from sklearn.utils import
tosequence``; scikit-learn removed that helper in 1.7. Rather than pin an old
scikit-learn, we put back the helper (same semantics as the removed one) before
sklearn-pandas is imported. ``six``, which sklearn-pandas imports without
declaring, is a direct dependency of this project instead.

Importing this module installs the shim, so a training script needs one line
before it imports sklearn-pandas::

    import service.model.compat  # noqa: F401  (sklearn-pandas on current scikit-learn)
    from sklearn_pandas import DataFrameMapper

Code that unpickles artifacts calls :func:`install` explicitly (``service.model.artifact``
does), which says why the import is there.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import sklearn.utils


def tosequence(x: Iterable[Any]) -> Sequence[Any] | np.ndarray:
    """Return ``x`` as an indexable sequence, without copying when it already is one."""
    if isinstance(x, np.ndarray):
        return np.asarray(x)
    if isinstance(x, Sequence):
        return x
    return list(x)


def install() -> None:
    """Make ``sklearn.utils.tosequence`` importable; a no-op where scikit-learn still has it."""
    if not hasattr(sklearn.utils, "tosequence"):
        sklearn.utils.tosequence = tosequence


install()
