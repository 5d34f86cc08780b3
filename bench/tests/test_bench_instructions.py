"""Instructions per heartbeat: the callgrind totals, and the pinning of processes to cores."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from evbench.costs import measure_central_records
from evbench.instructions import (
    InstructionError,
    Server,
    Workload,
    main_thread_instructions,
    measure_per_heartbeat,
)
from evbench.pinning import Pinning
from evbench.session_costs import SessionWorkload
from evstack.broker import EmbeddedBroker, free_port
from evstack.tools import require_tool


def test_the_main_threads_total_is_read_from_its_profile(tmp_path: Path) -> None:
    (tmp_path / "callgrind.out-01").write_bytes(b"# callgrind format\nevents: Ir\nsummary: 1234\n")
    (tmp_path / "callgrind.out-02").write_bytes(b"events: Ir\nsummary: 99\n")
    assert main_thread_instructions(tmp_path) == 1234


def test_a_missing_profile_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InstructionError, match="no callgrind profile"):
        main_thread_instructions(tmp_path)


def test_the_bare_server_costs_a_stable_number_of_instructions_per_heartbeat(
    tmp_path: Path,
) -> None:
    require_tool("valgrind", "to count instructions (callgrind)")
    port = free_port()
    argv = [sys.executable, "-m", "evbench.bare", "--listen", f"127.0.0.1:{port}"]
    server = Server([*argv, "--log-level", "WARNING"], ("127.0.0.1", port))
    found = measure_per_heartbeat(server, Workload(cps=5, short=1, long=4), tmp_path)
    assert found["heartbeats"] == 15
    # decoding, LRC, JSON and the ACK: tens of thousands of instructions, not millions
    assert 10_000 < found["instructions_per_heartbeat"] < 1_000_000


def test_pinning_puts_the_central_on_a_core_of_its_own() -> None:
    pinning = Pinning(frozenset({1}), frozenset({0}))
    assert pinning.cores_for("central") == {1} and pinning.cores_for("framed") == {1}
    assert pinning.cores_for("broker") == {0} and pinning.cores_for("loadgen") == {0}
    if shutil.which("taskset"):
        assert pinning.prefix("loadgen")[1:] == ["-c", "0"]
    assert not Pinning.none().active and Pinning.none().prefix("loadgen") == []


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two cores")
def test_a_pinned_process_runs_only_on_its_cores() -> None:
    pinning = Pinning.for_this_machine()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pinning.pin("central", proc.pid)
        assert os.sched_getaffinity(proc.pid) == pinning.server_cores
        assert pinning.report()["cores"] == {"central": sorted(pinning.server_cores)}
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_the_central_is_counted_per_authorization_and_per_telemetry(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    require_tool("valgrind", "to count instructions (callgrind)")
    workload = SessionWorkload(
        cps=3, auths_short=1, auths_long=3, sessions=2, telemetry_short=1, telemetry_long=3
    )
    found = measure_central_records(embedded_broker.bootstrap, tmp_path, workload)
    assert "error" not in found, found
    assert found["authorization"]["records"] == 2 and found["telemetry"]["records"] == 4
    # reading, checking, answering, sealing and proving: far more than a heartbeat's work,
    # far less than a second of it
    for kind in ("authorization", "telemetry"):
        assert 100_000 < found[kind]["instructions_per_record"] < 100_000_000, found[kind]
