"""Statistics the report is made of: percentiles, latency summaries, growth per 1,000 CPs."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["LatencySummary", "growth_per_1000", "percentile", "spread", "summarize"]


def percentile(values: Iterable[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between ranks; None when empty.

    The same definition as numpy's default, so p50 of ``[1, 2, 3, 4]`` is 2.5.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be between 0 and 100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latencies in milliseconds; percentiles are None when there was no sample."""

    count: int
    p50_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(seconds: Sequence[float]) -> LatencySummary:
    """p50, p99 and max of latencies given in seconds, reported in milliseconds."""
    if not seconds:
        return LatencySummary(0, None, None, None)
    p50 = percentile(seconds, 50)
    p99 = percentile(seconds, 99)
    assert p50 is not None and p99 is not None
    return LatencySummary(len(seconds), p50 * 1000, p99 * 1000, max(seconds) * 1000)


def growth_per_1000(points: Sequence[tuple[float, float]]) -> float | None:
    """Least-squares slope of ``value`` over ``cps``, times 1,000; None with fewer than 2 x values.

    ``points`` are ``(connected CPs, value)``: the slope says how much the value
    grows for every 1,000 more CPs, which is flat memory per CP when the
    per-step ratio stays constant.
    """
    if len({x for x, _ in points}) < 2:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    covariance = sum((x - mean_x) * (y - mean_y) for x, y in points)
    variance = sum((x - mean_x) ** 2 for x, _ in points)
    return covariance / variance * 1000


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, min and max of repeated readings of one figure (empty: all None)."""
    if not values:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }
