"""The sklearn-pandas shim: without it, sklearn-pandas 2.2.0 cannot import on current sklearn."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import sklearn.utils

from service.model import compat


def test_tosequence_keeps_sequences_and_arrays_and_lists_iterables() -> None:
    items = [1, 2]
    assert compat.tosequence(items) is items
    array = np.arange(3)
    assert np.array_equal(compat.tosequence(array), array)
    assert compat.tosequence(x for x in "ab") == ["a", "b"]


def test_install_provides_the_removed_helper() -> None:
    compat.install()
    assert sklearn.utils.tosequence is not None
    assert importlib.import_module("sklearn_pandas").DataFrameMapper is not None


def test_sklearn_pandas_fails_without_the_shim_and_imports_with_it() -> None:
    """Proves the shim is what makes the installed scikit-learn work with sklearn-pandas."""
    bare = subprocess.run(
        [sys.executable, "-c", "import sklearn_pandas"], capture_output=True, text=True
    )
    assert bare.returncode != 0
    assert "tosequence" in bare.stderr
    shimmed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import service.model.compat; import sklearn_pandas",
        ],
        capture_output=True,
        text=True,
    )
    assert shimmed.returncode == 0, shimmed.stderr
