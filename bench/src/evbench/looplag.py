"""The central's event-loop lag over a window, from its own Prometheus histogram.

``evcharging_central_event_loop_lag_seconds`` observes how late the central's
loop runs a 250 ms timer. Scraped at a window's start and end, the difference
of the cumulative buckets is that window's distribution: a small lag while
latencies are high says the time is spent outside the central (the broker,
the machine); a large one says the central's loop is the queue.
"""

from __future__ import annotations

import math
import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["LAG_METRIC", "lag_between", "scrape_lag_buckets"]

LAG_METRIC = "evcharging_central_event_loop_lag_seconds"

_MAX_BODY = 16 * 2**20  # /metrics at 10,000 CPs is ~0.6 MB

Buckets = dict[float, float]  # upper bound (le) -> cumulative count


def scrape_lag_buckets(http_url: str, timeout: float = 5.0) -> Buckets | None:
    """The histogram's cumulative buckets now; None when the central does not answer."""
    try:
        with urllib.request.urlopen(f"{http_url}/metrics", timeout=timeout) as response:
            body = response.read(_MAX_BODY + 1)
    except (OSError, ValueError):
        return None
    if len(body) > _MAX_BODY:
        return None  # not a metrics page we know how to read
    text = body.decode("utf-8", "replace")
    try:
        for family in text_string_to_metric_families(text):
            if family.name == LAG_METRIC:
                return {
                    float(s.labels["le"]): s.value
                    for s in family.samples
                    if s.name.endswith("_bucket")
                }
    except (ValueError, KeyError):  # not Prometheus text, or a bucket without le
        return None
    return None


def lag_between(before: Buckets | None, after: Buckets | None) -> dict[str, Any]:
    """p50 / p99 / max of the window as bucket upper bounds in ms (inf: above the last)."""
    if not before or not after:
        return {}
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1]
    if total <= 0:
        return {}

    def upper_bound(share: float) -> float:
        for bound, count in zip(bounds, counts, strict=True):
            if count >= share * total:
                return bound * 1000 if math.isfinite(bound) else math.inf
        return math.inf

    return {
        "samples": int(total),
        "p50_ms": upper_bound(0.5),
        "p99_ms": upper_bound(0.99),
        "max_ms": upper_bound(1.0),
    }
