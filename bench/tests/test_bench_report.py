"""The report: verdicts against the targets and a page that renders any run, failed steps too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evbench.report import render_markdown, summarize_run


def _latency(p50: float, p99: float) -> dict[str, Any]:
    return {"count": 10, "p50_ms": p50, "p99_ms": p99, "max_ms": p99}


def _step(cps: int, rss_mb: float, auth_p99: float) -> dict[str, Any]:
    window = {"start": 0.0, "end": 10.0, "seconds": 10.0, "heartbeats_acked": cps * 10}
    sessions = {
        "requests": 10, "authorized": 10, "denied": {}, "unanswered": 0,
        "concurrent_mean": cps / 10, "concurrent_max": cps / 10,
        "authorization": _latency(20.0, auth_p99), "telemetry": _latency(50.0, 90.0),
        "ledger": {"tickets": 10, "missing_tickets": 0, "seq_gaps": 0},
        "engine": {}, "reads_per_meant": {"drivers": 5, "ours": 1.5, "seed": 20.0},
        "sample_readers": [{"design": "ours", "per_meant": 1.0}],
    }  # fmt: skip
    central = {
        "loadgen": {
            "held": cps, "sessions": sessions, "dashboard": _latency(100.0, 240.0),
            "monitors": {"ack_rtt": _latency(1.0, 3.0), "late": 0},
            "windows": {"heartbeat": window, "sessions": window},
        },
        "heartbeat_window": {
            "cores": cps / 20_000, "us_per_heartbeat": 50.0, "rss_mb": rss_mb,
            "heartbeats_per_s": float(cps),
        },
        "sessions_window": {"cores": cps / 15_000},
        "peak_rss_mb": rss_mb,
    }  # fmt: skip
    return {
        "step": {"cps": cps, "drivers": 12, "rate": 5.0, "session_s": 20.0, "sessions": cps // 10},
        "bare": {"us_per_heartbeat": 40.0, "cores": 0.1},
        "framed": {"us_per_heartbeat": 45.0},
        "central": central,
        "broker": {"cores": 0.1},
        "machine_cores": {"sessions": 1.0},
        "profile": {},
    }


def _raw(*steps: dict[str, Any]) -> dict[str, Any]:
    return {
        "started_at": 0.0, "seconds": 60.0, "options": {"heartbeat_window": 15.0,
        "session_s": 20.0, "session_window": 30.0},
        "baseline": {"central_idle_cores": 0.01, "central_idle_rss_mb": 50.0},
        "steps": list(steps),
    }  # fmt: skip


def test_verdicts_say_which_targets_are_met_and_by_how_much_one_is_missed() -> None:
    raw = _raw(_step(1_000, 70.0, 80.0), _step(10_000, 250.0, 150.0))
    verdicts = summarize_run(raw, Path.cwd())["verdicts"]
    assert verdicts["connected_cps"]["met"]
    assert verdicts["heartbeat_cost_ratio"]["value"] == 1.25
    assert verdicts["heartbeat_cost_ratio"]["met"]
    missed = verdicts["authorization_p99_ms"]
    assert (missed["met"], missed["value"]) == (False, 150.0)
    assert missed["by"] == 0.5
    assert verdicts["nothing_lost_or_duplicated"]["met"]


def test_a_step_the_central_could_not_keep_up_with_is_left_out_of_the_cost_ratio() -> None:
    saturated = _step(10_000, 250.0, 50.0)
    saturated["central"]["heartbeat_window"].update(us_per_heartbeat=400.0, heartbeats_per_s=6e3)
    raw = _raw(_step(1_000, 70.0, 50.0), saturated)
    assert summarize_run(raw, Path.cwd())["verdicts"]["heartbeat_cost_ratio"]["value"] == 1.25


def test_growth_per_1000_cps_comes_from_the_steps() -> None:
    summary = summarize_run(_raw(_step(1_000, 70.0, 50.0), _step(2_000, 90.0, 50.0)), Path.cwd())
    assert summary["growth_per_1000_cps"]["central_rss_mb"] == 20.0


def test_a_failed_step_is_reported_and_the_page_still_renders() -> None:
    failed = {"step": {"cps": 5_000}, "error": "central-5000 took more than 300s"}
    summary = summarize_run(_raw(_step(1_000, 70.0, 50.0), failed), Path.cwd())
    page = render_markdown(summary)
    assert "The 5,000-CP step failed" in page
    assert "| 1,000 | 1,000 |" in page
    for section in ("## Targets", "### Where the Kafka latencies go", "## Cost of a heartbeat"):
        assert section in page
    assert summary["verdicts"]["connected_cps"]["met"] is False


def test_the_cost_ratio_comes_from_instructions_when_they_were_counted() -> None:
    raw = _raw(_step(1_000, 70.0, 50.0))
    raw["baseline"]["costs"] = {
        "workload": {"cps": 200, "short": 5, "long": 45},
        "bare": {"instructions_per_heartbeat": 100_000.0},
        "framed": {"instructions_per_heartbeat": 140_000.0},
        "central": {"instructions_per_heartbeat": 160_000.0},
        "central_x_bare": 1.6,
        "central_x_framed": 160 / 140,
    }
    raw["pinning"] = {"active": True, "cores": {"central": [1], "loadgen": [0]}, "failures": {}}
    summary = summarize_run(raw, Path.cwd())
    ratio = summary["verdicts"]["heartbeat_cost_ratio"]
    assert (ratio["value"], ratio["from"], ratio["met"]) == (1.6, "instructions", False)
    page = render_markdown(summary)
    assert "| 100,000 | 140,000 | 160,000 | 1.60× | 1.14× |" in page
    assert "| 1,000 | 1,000 | 40.0 | 45.0 | 50.0 |" in page  # window means: no slices
    assert "central on core 1, loadgen on core 0" in page


def test_cpu_per_heartbeat_is_the_median_of_the_windows_slices_with_their_range() -> None:
    step = _step(1_000, 70.0, 50.0)
    step["bare"]["us_per_heartbeat_slices"] = {"n": 4, "median": 31.0, "min": 25.0, "max": 46.0}
    page = render_markdown(summarize_run(_raw(step), Path.cwd()))
    assert "| 1,000 | 1,000 | 31.0 (25.0–46.0) | 45.0 | 50.0 |" in page


def test_a_killed_cp_is_judged_against_missed_heartbeats_times_the_interval() -> None:
    small, large = _step(1_000, 70.0, 50.0), _step(20_000, 400.0, 50.0)
    small["heartbeat_interval"], large["heartbeat_interval"] = 1.0, 5.0
    small["central"]["loadgen"]["killed_cp"] = {
        "interval_s": 1.0, "bound_s": 3.0, "dropped_s": 0.3, "silent_s": 3.4,
    }  # fmt: skip
    large["central"]["loadgen"]["killed_cp"] = {
        "interval_s": 5.0, "bound_s": 15.0, "dropped_s": 0.5, "silent_s": 14.1,
    }  # fmt: skip
    summary = summarize_run(_raw(small, large), Path.cwd())
    verdict = summary["verdicts"]["killed_cp_detected"]
    assert (verdict["met"], verdict["value"], verdict["silent_s"]) == (True, 0.5, [3.4, 14.1])
    page = render_markdown(summary)
    assert "| 20,000 | 5 | 1.00 |" in page and "| 0.50 | 14.10 | 15 |" in page

    large["central"]["loadgen"]["killed_cp"]["silent_s"] = None  # never shown DISCONNECTED
    verdicts = summarize_run(_raw(small, large), Path.cwd())["verdicts"]
    assert not verdicts["killed_cp_detected"]["met"]


def test_the_cost_of_proofs_is_reported_per_step() -> None:
    step = _step(1_000, 70.0, 50.0)
    cost = {"prove_us": 11.24, "verify_us": 9.06, "seal_us": 10.9, "open_us": 16.6}
    step["central"]["loadgen"]["sessions"]["proof_cost_us"] = cost
    page = render_markdown(summarize_run(_raw(step), Path.cwd()))
    assert "## Cost of the proofs on Kafka records" in page
    assert "| 1,000 | 11.2 | 9.1 | 10.9 | 16.6 |" in page
    assert "Cost of the proofs" not in render_markdown(
        summarize_run(_raw(_step(1_000, 70, 50)), Path.cwd())
    )
