"""Number formatting shared by the report and the thresholds, so a figure reads the same in both."""

from __future__ import annotations


def num(value: float) -> str:
    """Three significant figures or so, with thousands separators."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def times(value: float, reference: float) -> str:
    """``value / reference`` as ``1.23x``; n/a when the reference is 0 (it completed nothing)."""
    return f"{value / reference:.2f}x" if reference > 0 else "n/a"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"
