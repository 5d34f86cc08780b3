"""A window's loop-lag distribution from two scrapes of the cumulative histogram."""

from __future__ import annotations

import math

from evbench.looplag import lag_between

INF = math.inf


def test_the_window_is_the_difference_of_the_two_scrapes() -> None:
    before = {0.001: 100.0, 0.01: 100.0, 0.1: 100.0, INF: 100.0}
    # in the window: 98 observations under 1 ms, one under 10 ms, one under 100 ms
    after = {0.001: 198.0, 0.01: 199.0, 0.1: 200.0, INF: 200.0}

    assert lag_between(before, after) == {
        "samples": 100,
        "p50_ms": 1.0,
        "p99_ms": 10.0,
        "max_ms": 100.0,
    }


def test_lag_above_the_last_bound_is_infinite() -> None:
    before = {0.001: 0.0, INF: 0.0}
    after = {0.001: 1.0, INF: 2.0}

    assert lag_between(before, after)["max_ms"] == INF


def test_a_missing_scrape_or_an_empty_window_gives_nothing() -> None:
    assert lag_between(None, {INF: 1.0}) == {}
    assert lag_between({INF: 1.0}, {INF: 1.0}) == {}
