"""Percentiles, latency summaries and growth per 1,000 CPs."""

from __future__ import annotations

import resource

import pytest
from evbench.limits import fds_short_of, raise_fd_limit
from evbench.plan import interval_for, steps_for
from evbench.stats import growth_per_1000, percentile, spread, summarize


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 50) is None


def test_percentile_of_one_value_is_that_value() -> None:
    assert percentile([7.0], 0) == 7.0
    assert percentile([7.0], 99) == 7.0


def test_percentile_interpolates_between_ranks_like_numpy() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # order does not matter
    assert percentile(values, 50) == 2.5
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 25) == pytest.approx(1.75)


def test_p99_of_a_hundred_values_sits_just_below_the_maximum() -> None:
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 99) == pytest.approx(99.01)


def test_percentile_outside_0_to_100_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 100"):
        percentile([1.0], 101)


def test_summary_reports_milliseconds() -> None:
    summary = summarize([0.010, 0.020, 0.030])
    assert summary.count == 3
    assert summary.p50_ms == pytest.approx(20.0)
    assert summary.max_ms == pytest.approx(30.0)
    assert summary.to_dict()["p99_ms"] == pytest.approx(29.8)


def test_summary_of_no_samples_has_no_percentiles() -> None:
    assert summarize([]).to_dict() == {"count": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}


def test_growth_per_1000_is_the_slope_times_1000() -> None:
    # 40 MB at rest plus 25 MB per 1,000 CPs
    points = [(1000, 65.0), (2000, 90.0), (5000, 165.0), (10000, 290.0)]
    assert growth_per_1000(points) == pytest.approx(25.0)


def test_growth_per_1000_fits_noisy_points_by_least_squares() -> None:
    points = [(1000, 10.0), (2000, 14.0), (3000, 16.0)]
    assert growth_per_1000(points) == pytest.approx(3.0)


def test_growth_needs_two_different_cp_counts() -> None:
    assert growth_per_1000([]) is None
    assert growth_per_1000([(1000, 5.0), (1000, 6.0)]) is None


def test_the_spread_of_repeated_readings_is_their_median_and_range() -> None:
    assert spread([30.0, 46.0, 25.0, 31.0]) == {"n": 4, "median": 30.5, "min": 25.0, "max": 46.0}
    assert spread([]) == {"n": 0, "median": None, "min": None, "max": None}


def test_steps_above_10000_cps_hold_1000_sessions_at_a_5_s_heartbeat() -> None:
    small, large = steps_for((10_000, 50_000), session_s=20.0)
    assert (small.sessions, large.sessions) == (1_000, 1_000)
    assert (interval_for(small.cps), interval_for(large.cps)) == (1.0, 5.0)


def test_the_open_files_limit_is_at_least_what_it_was() -> None:
    before, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_fd_limit() >= before


def test_a_step_can_name_its_heartbeat_interval() -> None:
    plain, named = steps_for((10_000, (10_000, 5.0)), session_s=20.0)
    assert (plain.interval, plain.label) == (1.0, "10000")
    assert (named.interval, named.label, named.sessions) == (5.0, "10000@5", 1_000)


def test_a_step_beyond_the_open_files_limit_says_why_it_cannot_run() -> None:
    assert fds_short_of(10_000, 20_000) is None
    why = fds_short_of(50_000, 20_000)
    assert why is not None and "20,000" in why and "50,000 CPs" in why
