"""The OCPP step at a tiny scale against the real gateway, central and broker.

Five simulated OCPP 1.6J stations in two steps, a few remote starts: this asserts
that everything the step measures arrives and nothing is lost, never speed.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from evbench.ocppstep import GATEWAY_ARGS
from evbench.report import render_markdown, summarize_run
from evstack.localstack import LocalStack
from evstack.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def test_stations_at_one_call_a_second_and_remote_starts_lose_nothing(
    stack: LocalStack, tmp_path: Path
) -> None:
    stack.start_gateway(*GATEWAY_ARGS)  # as make bench starts it
    wait_until(lambda: _listening(stack.host, stack.ocpp_port), 60, "the gateway listens")
    out = tmp_path / "ocpp.json"
    argv = [
        sys.executable, "-m", "evbench.ocppload",
        "--gateway", f"ws://{stack.host}:{stack.ocpp_port}/ocpp", "--http", stack.http_url,
        "--kafka", stack.bootstrap,
        "--viewer-token-file", str(stack.workdir / "viewer-token"),
        "--enrollment-token-file", str(stack.workdir / "enrollment-token"),
        "--steps", "3,5", "--window", "4", "--start-rate", "1", "--drivers", "3",
        "--charge-s", "1", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())

    first, second = result["steps"]
    assert (first["stations"], second["stations"]) == (3, 5)
    for step in result["steps"]:
        assert step["connected"] == step["active_at_central"] == step["stations"]
        window = step["window"]
        # one call a second each (plus the supplies' own calls), every one answered
        assert window["calls"] >= step["stations"] * 3
        assert window["answered"] >= window["calls"] - step["stations"]  # in flight at the end
        assert (window["timeouts"], window["call_errors"], window["closed"]) == (0, 0, 0)
        starts = step["remote_start"]
        assert starts["drained"] and starts["unanswered"] == 0 and starts["denied"] == {}
        assert starts["requests"] >= 2
        # every supply was started remotely, seen started by its driver and ticketed once
        assert starts["to_station"]["count"] == starts["to_driver"]["count"] == starts["requests"]
        assert starts["tickets"] == starts["authorized"] == starts["requests"]
        assert starts["missing_tickets"] == starts["duplicate_tickets"] == 0
        assert 0 < starts["to_station"]["p50_ms"] < starts["to_driver"]["p50_ms"]

    stations = result["stations"]
    assert stations["connected"] == 5 and stations["boot_not_accepted"] == 0
    assert {"Heartbeat", "MeterValues", "StartTransaction", "StopTransaction"} <= set(
        stations["calls"]
    )
    assert stations["transactions"] == stations["stops"] == stations["remote_starts"]

    # the report renders the step from the raw result, as make bench does
    raw = {
        "started_at": 0.0, "seconds": 60.0, "options": {"heartbeat_window": 12.0,
        "session_s": 20.0, "session_window": 30.0}, "baseline": {}, "steps": [],
        "ocpp": {**result, "steps": [{**s, "gateway_cores": 0.01} for s in result["steps"]]},
    }  # fmt: skip
    summary = summarize_run(raw, Path.cwd())
    assert summary["ocpp"]["held_up_to"] in (None, 3, 5)
    page = render_markdown(summary)
    assert "## OCPP gateway" in page and "| 5 |" in page
