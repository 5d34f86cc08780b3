"""A small load against the real evcentral: nothing lost, nothing duplicated.

200 simulated CPs report for 20 s while a few drivers run short supplies;
this asserts correctness (every session exactly one ticket, telemetry
without gaps or repeats, every CP held), never speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from evbench.looplag import scrape_lag_buckets
from evstack.localstack import LocalStack

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_a_small_load_loses_and_duplicates_nothing(stack: LocalStack, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    argv = [
        sys.executable, "-m", "evbench.loadgen",
        "--central", stack.central_address, "--http", stack.http_url, "--kafka", stack.bootstrap,
        "--registration-token-file", str(stack.workdir / "registration-token"),
        "--enrollment-token-file", str(stack.workdir / "enrollment-token"),
        "--viewer-token-file", str(stack.workdir / "viewer-token"),
        "--secrets", str(tmp_path / "secrets.json"),
        "--cps", "200", "--drivers", "12", "--rate", "2", "--session-s", "4",
        "--heartbeat-window", "6", "--duration", "8", "--probes", "5", "--settle", "2",
        "--detect-killed", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())

    monitors = result["monitors"]
    assert monitors["connected"] == 200
    assert monitors["registered"] == 200
    assert result["held_at_end"] == 200
    assert monitors["closed_by_peer"] == 0  # but the killed CPs' links
    # the fleet heartbeats at the interval the central named; a reset link is seen at once,
    # a silent one after 3 missed heartbeats (+ the dashboard's coalescing)
    killed = result["killed_cp"]
    assert (killed["interval_s"], killed["bound_s"]) == (0.5, 1.5)
    assert killed["dropped_s"] is not None and killed["dropped_s"] < 3.0
    assert killed["silent_s"] is not None and 1.0 < killed["silent_s"] < 1.5 + 1.0
    assert monitors["nacked"] == 0
    assert monitors["acked"] > 200 * 10

    sessions = result["sessions"]
    # every party spoke the proven protocol: nothing refused either way
    assert sessions["drivers_enrolled"] == 12
    assert sessions["refused_records"] == 0
    assert sessions["unproven_directives"] == 0
    assert set(sessions["proof_cost_us"]) == {"prove_us", "verify_us", "seal_us", "open_us"}
    ledger = sessions["ledger"]
    assert ledger["sessions"] >= 5
    assert ledger["clean"], ledger
    assert ledger["tickets"] == ledger["sessions"]
    assert ledger["telemetry"] > 0
    assert sessions["unanswered"] == 0
    assert sessions["denied"] == {}
    assert sessions["duplicate_responses"] == 0
    assert sessions["telemetry_unmatched"] == 0
    assert sessions["engine"]["sessions_with_more_than_one_ticket"] == 0
    assert sessions["engine"]["tickets"] == ledger["sessions"]

    ours, seed = sessions["sample_readers"]
    assert ours["meant"] == seed["meant"] > 0  # the same driver's messages, both designs
    assert ours["read"] < seed["read"]

    echo = result["broker_echo"]  # the one-hop reference: sent, read back, timed
    assert echo["errors"] == 0
    assert echo["count"] > 0 and echo["received"] >= echo["count"]

    dashboard = result["dashboard"]
    assert dashboard["count"] > 0
    assert dashboard["timeouts"] == 0

    # the central's loop-lag histogram, as the benchmark reads it for each window
    lag = scrape_lag_buckets(stack.http_url)
    assert lag is not None and lag[float("inf")] > 0
