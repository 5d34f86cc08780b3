"""The OCPP section of the report: stations per core at the largest step the gateway held."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evbench.report import render_markdown, summarize_ocpp, summarize_run


def _latency(p50: float, p95: float, p99: float) -> dict[str, Any]:
    return {"count": 40, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": p99}


def _step(stations: int, gateway_cores: float, late: int = 0) -> dict[str, Any]:
    window = {
        "start": 0.0, "end": 12.0, "seconds": 12.0, "calls": stations * 12,
        "answered": stations * 12, "calls_per_s": float(stations), "late": late,
        "timeouts": 0, "call_errors": 0, "missed_ticks": 0, "closed": 0,
        "call_rtt": _latency(2.0, 8.0, 20.0), "loadgen_cores": 0.1,
    }  # fmt: skip
    starts = {
        "to_station": _latency(40.0, 60.0, 90.0), "to_driver": _latency(80.0, 120.0, 150.0),
        "drained": True, "requests": 40, "authorized": 40, "denied": {}, "unanswered": 0,
        "driver_errors": {}, "tickets": 40, "missing_tickets": 0, "duplicate_tickets": 0,
        "refused_records": 0, "publish_failures": 0,
    }  # fmt: skip
    return {
        "stations": stations, "connected": stations, "active_at_central": stations,
        "ramp_s": 2.0, "window": window, "remote_start": starts,
        "gateway_cores": gateway_cores, "gateway_rss_mb": 90.0, "central_cores": 0.05,
        "broker_cores": 0.08, "machine_cores": 0.9,
    }  # fmt: skip


def _ocpp(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "plan": {"window": 12.0, "drivers": 24, "start_rate": 4.0, "charge_s": 2.0, "late_s": 1.0},
        "steps": list(steps),
        "remote_start": {"to_station": _latency(41.0, 61.0, 91.0),
                         "to_driver": _latency(81.0, 121.0, 151.0)},
    }  # fmt: skip


def _raw(ocpp: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "started_at": 0.0, "seconds": 60.0, "options": {"heartbeat_window": 12.0,
        "session_s": 20.0, "session_window": 30.0}, "baseline": {}, "steps": [], "ocpp": ocpp,
    }  # fmt: skip


def test_stations_per_core_come_from_the_largest_step_held() -> None:
    ocpp = summarize_ocpp(_ocpp(_step(250, 0.1), _step(500, 0.2), _step(1_000, 0.9, late=3)))
    assert ocpp is not None
    assert [r["held"] for r in ocpp["steps"]] == [True, True, False]
    assert (ocpp["held_up_to"], ocpp["stations_per_core"]) == (500, 2_500.0)


def test_a_lost_supply_or_a_station_not_active_is_not_held() -> None:
    lost, inactive = _step(250, 0.1), _step(500, 0.2)
    lost["remote_start"]["missing_tickets"] = 1
    inactive["active_at_central"] = 499
    ocpp = summarize_ocpp(_ocpp(lost, inactive))
    assert ocpp is not None
    assert [r["held"] for r in ocpp["steps"]] == [False, False]
    assert ocpp["held_up_to"] is None and ocpp["steps"][0]["lost"] == 1


def test_the_page_shows_the_step_and_the_remote_start_latencies() -> None:
    page = render_markdown(summarize_run(_raw(_ocpp(_step(250, 0.1), _step(500, 0.2))), Path.cwd()))
    assert "## OCPP gateway" in page
    assert "held 500 OCPP 1.6J stations" in page and "**2,500 stations per core**" in page
    assert "41 / 61 / 91 ms" in page and "81 / 121 / 151 ms" in page
    assert "| 500 | 500 | 2.0 / 20.0 / 20 | 0.20 | 2,500 |" in page
    assert "| 250 | 40 | 40 / 60 / 90 | 80 / 120 / 150 | 40 |" in page


def test_a_failed_or_skipped_ocpp_step_renders() -> None:
    failed = render_markdown(summarize_run(_raw({"error": "ocpp took more than 600s"}), Path.cwd()))
    assert "**The OCPP step failed**: ocpp took more than 600s" in failed
    assert "## OCPP gateway" not in render_markdown(summarize_run(_raw(None), Path.cwd()))
