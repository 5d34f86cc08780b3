"""The OCPP step of ``make bench``: how many OCPP stations one ``evocpp`` holds per core.

The gateway runs as ``make run`` starts it (``LocalStack.gateway_process``:
enrollment auto, each connector registering at the central with the
registration token), asking its stations for a heartbeat every second, on
the servers' core by itself (the central moves to the other cores for the
step). One :mod:`evbench.ocppload` process drives it; this module builds its
command line and reads the gateway's, central's and broker's CPU and memory
over each of its windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evstack.localstack import LocalStack

from evbench.plan import BenchOptions
from evbench.procstat import MACHINE, ProcessSampler

__all__ = ["GATEWAY_ARGS", "loadgen_argv", "loadgen_budget", "window_figures"]

# the stations' heartbeat interval (BootNotification) is the 1 Hz of the step; logs at
# WARNING: a line per station connecting is not what is measured
GATEWAY_ARGS = ("--heartbeat-interval", "1", "--call-timeout", "10", "--log-level", "WARNING")


def loadgen_argv(stack: LocalStack, options: BenchOptions, workdir: Path, run_id: str) -> list[str]:
    return [
        "--gateway", f"ws://{stack.host}:{stack.ocpp_port}/ocpp",
        "--http", stack.http_url, "--kafka", stack.bootstrap,
        "--viewer-token-file", str(stack.workdir / "viewer-token"),
        "--enrollment-token-file", str(stack.workdir / "enrollment-token"),
        "--secrets", str(workdir / "ocpp-driver-secrets.json"),
        "--steps", ",".join(str(n) for n in options.ocpp_steps),
        "--window", f"{options.ocpp_window:g}", "--start-rate", f"{options.ocpp_start_rate:g}",
        "--run-id", run_id, "--log-level", "WARNING",
    ]  # fmt: skip


def loadgen_budget(options: BenchOptions) -> float:
    """Seconds the load may take: each step's ramp and CPs' login, window and drain."""
    ramp = 60.0 + 30.0  # evbench.ocppload's deadlines: connecting, then the CPs ACTIVE
    return 120.0 + len(options.ocpp_steps) * (ramp + options.ocpp_window + 60.0)


def window_figures(sampler: ProcessSampler, window: dict[str, Any]) -> dict[str, Any]:
    """CPU (cores) and memory (MB) of the step's processes over one window."""
    start, end = window["start"], window["end"]
    rss = sampler.last_rss("gateway", end)
    return {
        "gateway_cores": sampler.cores("gateway", start, end),
        "gateway_rss_mb": rss / 2**20 if rss is not None else None,
        "central_cores": sampler.cores("central", start, end),
        "broker_cores": sampler.cores("broker", start, end),
        "machine_cores": sampler.cores(MACHINE, start, end),
    }
