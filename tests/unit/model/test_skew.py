"""The VERSION_SKEW verdicts, version by version."""

from __future__ import annotations

import pytest

from service.errors import VersionSkew
from service.model import skew


def test_the_same_or_an_unknown_version_says_nothing() -> None:
    assert skew.judge("1.8.0", "refuse", running="1.8.0") is None
    assert skew.judge(None, "refuse", running="1.8.0") is None


def test_another_patch_release_warns_naming_both() -> None:
    warning = skew.judge("1.8.1", "refuse", running="1.8.0")
    assert warning is not None
    assert "scikit-learn 1.8.1" in warning and "scikit-learn 1.8.0" in warning


@pytest.mark.parametrize("trained", ["1.7.2", "0.24.2", "2.8.0", "pre-0.18", "1.4.2, 1.5.0"])
def test_another_minor_major_or_unreadable_version_is_refused(trained: str) -> None:
    with pytest.raises(VersionSkew) as refused:
        skew.judge(trained, "refuse", running="1.8.0")
    assert refused.value.details == {"trained_sklearn": trained, "running_sklearn": "1.8.0"}
    assert refused.value.status_code == 422


def test_warn_serves_any_difference() -> None:
    warning = skew.judge("0.24.2", "warn", running="1.8.0")
    assert warning is not None and "VERSION_SKEW=warn" in warning
