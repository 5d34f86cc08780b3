"""``python -m evbench.memory``: the central's resident memory per connected CP.

For each fleet size N: a fresh embedded broker and central, the bench's monitor
fleet (``evbench.loadgen``, no sessions) registers N CPs; the central is restarted
on the same database and the fleet authenticates and heartbeats at 1 Hz; the
central's RSS is read in the middle of that window. The figure is the slope
between the smallest and the largest N, so the fixed cost (interpreter, imports,
Kafka client) cancels. Minutes, not the full ``make bench``; bench/findings.md,
"Memory per CP", has the figures per commit.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from evstack.localstack import LocalStack, ManagedProcess

from evbench.limits import raise_fd_limit
from evbench.procstat import rss_bytes
from evbench.run import wait_ready

__all__ = ["kb_per_cp", "main", "measure"]


def kb_per_cp(rss_kb: dict[int, int]) -> float | None:
    """KB of RSS per CP between the smallest and the largest fleet; None with one size."""
    low, high = min(rss_kb), max(rss_kb)
    return None if low == high else (rss_kb[high] - rss_kb[low]) / (high - low)


def _held_rss(stack: LocalStack, central: ManagedProcess, cps: int, hold: float) -> int:
    """Hold ``cps`` CPs against the central; its RSS (KB) halfway through the window."""
    argv = [
        sys.executable, "-m", "evbench.loadgen", "--cps", str(cps), "--sources", "8",
        "--central", stack.central_address, "--probes", "0", "--settle", "2",
        "--heartbeat-window", f"{hold:g}", "--log-level", "WARNING",
        "--registration-token-file", str(stack.workdir / "registration-token"),
        "--secrets", str(stack.workdir / "cp-secrets.json"),
        "--out", str(stack.workdir / f"loadgen-{cps}.json"),
    ]  # fmt: skip
    rss: list[int] = []
    timer = threading.Timer(hold / 2, lambda: rss.append(rss_bytes(central.pid)))
    with subprocess.Popen(argv, stderr=subprocess.PIPE, text=True) as load:
        assert load.stderr is not None
        started = False
        for line in load.stderr:
            if line.strip() == "loadgen: window heartbeat start":
                timer.start()
                started = True
        if load.wait() != 0 or not started:
            raise SystemExit(f"evbench.loadgen failed with {cps} CPs")
    timer.join()
    result = json.loads((stack.workdir / f"loadgen-{cps}.json").read_text())
    if result.get("held") != cps:
        raise SystemExit(f"only {result.get('held')} of {cps} CPs held; see {central.log_path}")
    return rss[0] // 1024


def measure(sizes: list[int], workdir: Path, hold: float) -> dict[str, Any]:
    rss_kb: dict[int, int] = {}
    for cps in sizes:
        shutil.rmtree(workdir / f"cps-{cps}", ignore_errors=True)  # no CP known yet
        stack = LocalStack(workdir / f"cps-{cps}")
        try:
            stack.start_broker()
            central = stack.start_central("--registration-burst", str(10 * cps))
            wait_ready(stack, central)
            _held_rss(stack, central, cps, hold)  # registers the fleet
            central.restart()
            wait_ready(stack, central)
            rss_kb[cps] = _held_rss(stack, central, cps, hold)
        finally:
            stack.stop()
        print(f"evbench.memory: {cps} CPs held, central RSS {rss_kb[cps]} KB", file=sys.stderr)
    return {"rss_kb": rss_kb, "kb_per_cp": kb_per_cp(rss_kb), "measured_at": time.time()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evbench.memory", description=__doc__)
    parser.add_argument("--cps", default="1000,3000", help="fleet sizes, comma-separated")
    parser.add_argument("--hold", type=float, default=12.0, help="seconds of heartbeats held")
    parser.add_argument("--workdir", type=Path, default=Path("bench-out/memory"))
    args = parser.parse_args(argv)
    sizes = sorted({int(part) for part in args.cps.split(",")})
    if len(sizes) < 2 or sizes[0] < 1:
        parser.error("--cps needs two or more sizes of at least 1 CP")
    raise_fd_limit()
    print(json.dumps(measure(sizes, args.workdir, args.hold), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
