"""The load steps of ``make bench`` and the targets they are judged against."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_OCPP_STEPS",
    "DEFAULT_STEPS",
    "LARGE_FLEET_CPS",
    "LARGE_FLEET_INTERVAL_S",
    "SAMPLE_READERS_UP_TO",
    "TARGETS",
    "BenchOptions",
    "Step",
    "StepSpec",
    "interval_for",
    "steps_for",
]

DEFAULT_STEPS = (1_000, 2_000, 5_000, 10_000)
# OCPP stations per step of the gateway's step (evbench.ocppstep), one call a second each
DEFAULT_OCPP_STEPS = (250, 500, 1_000, 2_000)
# larger steps (opt-in: make bench STEPS=1000,2000,5000,10000,20000,50000) run with the
# heartbeat interval a central of a large fleet names (docs/decisions.md)
LARGE_FLEET_CPS = 10_000
LARGE_FLEET_INTERVAL_S = 5.0
# the real sample consumers (one reads both driver topics whole, doubling the broker's
# fetch work on them) run only up to here; the fleet's tally gives reads per message anyway
SAMPLE_READERS_UP_TO = 5_000
SESSIONS_PER_CP = 0.1  # one CP in ten is supplying: 1,000 concurrent sessions at 10,000 CPs
MAX_SESSIONS = 1_000  # the target; steps above 10,000 CPs are about holding the CPs

TARGETS: dict[str, Any] = {
    "connected_cps": 10_000,
    "concurrent_sessions": 1_000,
    "authorization_p99_ms": 100.0,
    "telemetry_p99_ms": 500.0,
    "central_cores": 1.0,
    "central_rss_mb": 500.0,
    "heartbeat_cost_ratio": 1.5,
}


@dataclass(frozen=True, slots=True)
class Step:
    cps: int
    drivers: int
    rate: float  # supply requests per second
    session_s: float
    sessions: int  # concurrent sessions aimed at (rate x session length)
    interval: float = 1.0  # the heartbeat interval the central names (seconds)

    @property
    def label(self) -> str:
        """``10000``, or ``10000@5`` when the interval is not the one its size gets."""
        default = self.interval == interval_for(self.cps)
        return f"{self.cps}" if default else f"{self.cps}@{self.interval:g}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def interval_for(cps: int) -> float:
    """The heartbeat interval the bench's central names at a step of ``cps`` CPs."""
    return LARGE_FLEET_INTERVAL_S if cps > LARGE_FLEET_CPS else 1.0


StepSpec = int | tuple[int, float]  # CPs, or CPs and the heartbeat interval


def steps_for(cps_steps: tuple[StepSpec, ...], session_s: float) -> list[Step]:
    """Each step supplies at one CP in ten (at most 1,000), from a quarter more drivers;
    a step without its own interval gets :func:`interval_for` its CPs."""
    steps = []
    for spec in cps_steps:
        cps, interval = spec if isinstance(spec, tuple) else (spec, interval_for(spec))
        sessions = min(MAX_SESSIONS, max(1, round(cps * SESSIONS_PER_CP)))
        steps.append(
            Step(
                cps=cps,
                drivers=sessions + max(1, sessions // 4),
                rate=sessions / session_s,
                session_s=session_s,
                sessions=sessions,
                interval=interval,
            )
        )
    return steps


@dataclass(frozen=True, slots=True)
class BenchOptions:
    steps: tuple[StepSpec, ...] = DEFAULT_STEPS
    session_s: float = 20.0
    heartbeat_window: float = 12.0
    session_window: float = 30.0
    bare_window: float = 8.0
    probes: int = 20
    idle_window: float = 5.0
    profile: bool = True  # py-spy on the central during the largest step's session window
    instructions: bool = True  # callgrind: instructions per heartbeat of the three servers
    instruction_cps: int = 200  # CPs of the callgrind workload
    pin: bool = True  # the central on a core of its own (taskset), the rest on the others
    ocpp_steps: tuple[int, ...] = DEFAULT_OCPP_STEPS  # () = no OCPP step
    ocpp_window: float = 10.0  # seconds measured at each OCPP step
    ocpp_start_rate: float = 4.0  # remote starts per second in each OCPP window
    references: bool = True  # the bare and framed servers' loads before each step
