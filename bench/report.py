"""Percentiles and plain-text report lines shared by the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float:
    """The nearest-rank percentile `p` (0 < p <= 100) of `samples`; NaN when there are none."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(seconds: float) -> str:
    """Seconds as milliseconds, aligned for a table; `-` for no value."""
    return "       -" if math.isnan(seconds) else f"{seconds * 1000:8.1f}"


def latency_line(label: str, samples: Sequence[float], quantiles: Sequence[float]) -> str:
    """`label  n=..  p50 ... ms  p95 ... ms  ...  max ... ms` for latencies in seconds."""
    cells = [f"p{q:g} {ms(percentile(samples, q))}" for q in quantiles]
    cells.append(f"max {ms(max(samples) if samples else math.nan)}")
    return f"{label:<24} n={len(samples):<6} " + "  ".join(f"{c} ms" for c in cells)
