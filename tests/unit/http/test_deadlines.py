"""A request's deadline from X-Request-Timeout and nginx's X-Request-Start."""

from __future__ import annotations

import time

import pytest

from service.errors import BadRequest
from service.http.deadlines import deadline


def remaining(timeout: str | None, start: str | None, limit_s: float) -> float | None:
    found = deadline(timeout, start, limit_s)
    return None if found is None else found - time.monotonic()


def test_the_clients_budget_is_capped_by_predict_timeout() -> None:
    assert remaining("2", None, 25) == pytest.approx(2, abs=0.05)
    assert remaining("60", None, 25) == pytest.approx(25, abs=0.05)


def test_without_a_budget_there_is_no_deadline() -> None:
    """A request queued behind a stuck call then gets 503, which nginx resends elsewhere."""
    assert remaining(None, None, 25) is None
    assert remaining(None, f"t={time.time() - 1:.3f}", 25) is None
    assert remaining("3", None, 0) == pytest.approx(3, abs=0.05)  # PREDICT_TIMEOUT_S=0: no cap


def test_time_queued_before_the_app_counts() -> None:
    arrived = f"t={time.time() - 1.5:.3f}"
    assert remaining("2", arrived, 25) == pytest.approx(0.5, abs=0.1)


@pytest.mark.parametrize("start", ["garbage", "t=abc", f"t={time.time() + 86400:.3f}", "t=1.0"])
def test_a_start_from_nowhere_is_ignored(start: str) -> None:
    """No header of ours, a clock ahead, or one a day behind: the app's own arrival counts."""
    assert remaining("2", start, 25) == pytest.approx(2, abs=0.05)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "inf", ""])
def test_a_bad_budget_is_a_400_naming_the_header(value: str) -> None:
    with pytest.raises(BadRequest, match="X-Request-Timeout must be a positive number"):
        deadline(value, None, 25)
