"""Instructions per heartbeat: a cost figure the machine's other load cannot move.

Hardware counters (``perf stat -e instructions``) are used where the machine has
them; on a VM without a PMU they read ``<not supported>``, so each server runs
under ``valgrind --tool=callgrind`` instead, twice, on a fixed workload: N CPs
connect (and authenticate), then each CP sends ``short`` heartbeats in one run
and ``long`` in the other, every round ACKed before the next. Start-up,
connecting and shutdown are the same in both runs, so the difference of the two
instruction totals over N × (long − short) is the work of one heartbeat.
Only the main thread (the event loop that handles heartbeats) is counted
(``--separate-threads``): background threads such as librdkafka's do timed
work that grows with how long a slow run takes, not with heartbeats.
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evproto.errors import EvError

from evbench.monitors import FleetConfig, MonitorFleet, cp_id_for

__all__ = [
    "InstructionError",
    "Workload",
    "callgrind_available",
    "main_thread_instructions",
    "measure_per_heartbeat",
    "run_under_callgrind",
]

_TOTALS = re.compile(rb"^(?:summary|totals):\s+(\d+)", re.MULTILINE)
_POLL = 0.05


class InstructionError(EvError):
    code = "instructions"
    default_message = "instructions could not be counted"


@dataclass(frozen=True, slots=True)
class Workload:
    """N CPs × heartbeats: ``short`` in one run, ``long`` in the other."""

    cps: int = 100
    short: int = 5
    long: int = 25
    registration_token: str | None = None  # None: the reference servers, no authentication
    timeout: float = 240.0  # seconds one run may take under callgrind

    @property
    def heartbeats(self) -> int:
        """Heartbeats the difference of the two runs is made of."""
        return self.cps * (self.long - self.short)


@dataclass(slots=True)
class Server:
    """How to start one server and when it is ready to take the workload."""

    argv: list[str]
    address: tuple[str, int]
    env: dict[str, str] = field(default_factory=dict)
    ready_url: str | None = None  # else: ready when the address accepts connections
    before_each: Callable[[], None] = lambda: None  # e.g. a fresh database
    prefix: list[str] = field(default_factory=list)  # e.g. taskset: the core it runs on


def callgrind_available() -> str | None:
    """Why callgrind cannot run here, or None."""
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind)"
    return None


def main_thread_instructions(out_dir: Path) -> int:
    """The instruction total of the main thread's callgrind profile in ``out_dir``."""
    profiles = sorted(out_dir.glob("callgrind.out*-01"))
    if not profiles:
        raise InstructionError(f"no callgrind profile of the main thread in {out_dir}")
    found = _TOTALS.search(profiles[0].read_bytes())
    if found is None:
        raise InstructionError(f"no instruction total in {profiles[0]}")
    return int(found.group(1))


def measure_per_heartbeat(server: Server, workload: Workload, workdir: Path) -> dict[str, float]:
    """Instructions of one heartbeat (and of each run), from the two callgrind runs."""
    totals = {}
    for name, beats in (("short", workload.short), ("long", workload.long)):
        out_dir = workdir / name
        shutil.rmtree(out_dir, ignore_errors=True)
        out_dir.mkdir(parents=True)
        server.before_each()
        totals[name] = run_under_callgrind(
            server,
            out_dir,
            workload.timeout,
            functools.partial(_drive, server.address, workload, beats),
        )
    per = (totals["long"] - totals["short"]) / workload.heartbeats
    return {
        "instructions_per_heartbeat": per,
        "short_run_instructions": totals["short"],
        "long_run_instructions": totals["long"],
        "cps": workload.cps,
        "heartbeats": workload.heartbeats,
    }


Drive = Callable[[float], Coroutine[Any, Any, None]]  # the workload, given its deadline (monotonic)


def run_under_callgrind(server: Server, out_dir: Path, timeout: float, drive: Drive) -> int:
    """Start ``server`` under callgrind, run ``drive`` against it, stop it: the main
    thread's instruction total."""
    argv = [
        *server.prefix,
        "valgrind",
        "--tool=callgrind",
        "--separate-threads=yes",
        "--dump-line=no",
        f"--callgrind-out-file={out_dir / 'callgrind.out'}",
        *server.argv,
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0", **server.env}
    with open(out_dir / "server.log", "wb") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + timeout
            _wait_ready(server, proc, deadline)
            asyncio.run(drive(deadline))
            proc.terminate()
            proc.wait(max(10.0, deadline - time.monotonic()))
        except (subprocess.TimeoutExpired, TimeoutError) as exc:
            raise InstructionError(f"{server.argv[0]} under callgrind: {exc}") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return main_thread_instructions(out_dir)


def _wait_ready(server: Server, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise InstructionError(f"{server.argv[0]} exited under callgrind ({proc.returncode})")
        if _ready(server):
            return
        time.sleep(0.5)
    raise TimeoutError("not ready in time")


def _ready(server: Server) -> bool:
    try:
        if server.ready_url is not None:
            with urllib.request.urlopen(server.ready_url, timeout=2) as response:
                return bool(response.status == 200)
        with socket.create_connection(server.address, timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


async def _drive(address: tuple[str, int], workload: Workload, beats: int, deadline: float) -> None:
    """Connect every CP, then ``beats`` rounds of one heartbeat each, every round ACKed."""
    host, port = address
    fleet = MonitorFleet(
        FleetConfig(
            host,
            port,
            cp_ids=[cp_id_for(i) for i in range(workload.cps)],
            sources=["127.0.0.1"],
            registration_token=workload.registration_token,
            connect_concurrency=10,
            timeout=workload.timeout,
            connect_attempts=1,
        )
    )
    try:
        await fleet.connect_all(deadline - time.monotonic())
        links = list(fleet.links.values())
        if len(links) != workload.cps:
            raise InstructionError(f"{len(links)} of {workload.cps} CPs connected")
        # each link reported once as it connected
        await _until_acked(fleet, workload.cps, deadline)
        for done in range(1, beats + 1):
            for link in links:
                link.send_status()
            await _until_acked(fleet, workload.cps * (done + 1), deadline)
    finally:
        await fleet.close()


async def _until_acked(fleet: MonitorFleet, count: int, deadline: float) -> None:
    while fleet.counters.acked < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{fleet.counters.acked} of {count} heartbeats ACKed in time")
        if fleet.counters.closed_by_peer:
            raise InstructionError(f"the server closed {fleet.counters.closed_by_peer} links")
        await asyncio.sleep(_POLL)
