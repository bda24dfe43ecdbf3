"""A one-minute soak through nginx (``make soak`` runs ten): no errors, flat worker memory."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak import GROWTH_LIMIT, run

pytestmark = pytest.mark.soak


def test_steady_load_for_a_minute(tmp_path: Path) -> None:
    soak = run(60, tmp_path)
    print(soak.report())
    assert soak.requests > 1000
    assert soak.errors == 0
    assert set(soak.baseline_kib) == set(soak.final_kib), "a worker was replaced during the soak"
    assert len(soak.final_kib) == 2
    for pid, growth in soak.growth().items():
        assert growth < GROWTH_LIMIT, f"worker {pid} RSS grew {growth:.1%}"
