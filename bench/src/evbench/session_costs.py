"""Instructions per authorization and per telemetry record: the central's Kafka work.

The same two-run difference as :mod:`evbench.instructions`, on the central only
(it is the only server that speaks Kafka). Each run starts the central under
callgrind on a fresh database, connects ``cps`` CPs (registered, one status
each, so they are ACTIVE) and enrolls as many drivers on Kafka; then

* an *authorization* run sends ``n`` proven supply requests one at a time,
  each awaited until its answer arrives (the central's work: read and check
  the request, answer the driver sealed, prove and publish the START);
  ``auths_short`` in one run and ``auths_long`` in the other;
* a *telemetry* run starts ``sessions`` supplies (request, START read and
  checked by the engine fleet, ``SupplyStarted``), then sends rounds of one
  proven ``Telemetry`` per session, each round awaited until the driver has
  every relayed update (the central's work: read and check the report, update
  the session, seal and publish the ``DriverUpdate``); ``telemetry_short``
  rounds in one run and ``telemetry_long`` in the other.

Start-up, registration, enrollment and shutdown are the same in both runs of
a pair, so the difference over the extra records is the work of one record.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evproto.kafka import KafkaSettings, Publisher
from evproto.messages import Telemetry

from evbench.drivers import DriverFleet
from evbench.engines import EngineFleet, TelemetryClock
from evbench.instructions import InstructionError, Server, run_under_callgrind
from evbench.kafkaread import FleetReader
from evbench.monitors import FleetConfig, MonitorFleet, SecretStore, cp_id_for

__all__ = ["SessionWorkload", "Tokens", "measure_per_record"]

_POLL = 0.05
_POWER_KW = 22.0


@dataclass(frozen=True, slots=True)
class SessionWorkload:
    cps: int = 40  # CPs connected and drivers enrolled in every run
    auths_short: int = 10
    auths_long: int = 40
    sessions: int = 10  # supplies running in the telemetry runs
    telemetry_short: int = 2  # rounds of one telemetry per session
    telemetry_long: int = 12
    timeout: float = 300.0  # seconds one run may take under callgrind

    def to_dict(self) -> dict[str, Any]:
        """The workload's counts, for the report (the timeout is not a figure)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "timeout"}


@dataclass(frozen=True, slots=True)
class Tokens:
    registration: str
    enrollment: str


Scenario = Callable[["_Rig", float], Awaitable[None]]  # the rig, the deadline


def measure_per_record(
    server: Server, workload: SessionWorkload, workdir: Path, bootstrap: str, tokens: Tokens
) -> dict[str, Any]:
    """The central's instructions per authorization and per telemetry record."""
    w = workload
    pairs: dict[str, tuple[tuple[str, Scenario], tuple[str, Scenario], int]] = {
        "authorization": (
            ("auth-short", functools.partial(_authorizations, w.auths_short)),
            ("auth-long", functools.partial(_authorizations, w.auths_long)),
            w.auths_long - w.auths_short,
        ),
        "telemetry": (
            ("telemetry-short", functools.partial(_telemetry, w.sessions, w.telemetry_short)),
            ("telemetry-long", functools.partial(_telemetry, w.sessions, w.telemetry_long)),
            w.sessions * (w.telemetry_long - w.telemetry_short),
        ),
    }
    found: dict[str, Any] = {"workload": w.to_dict()}
    for kind, (short, long, records) in pairs.items():
        totals = {}
        for name, scenario in (short, long):
            out_dir = workdir / name
            out_dir.mkdir(parents=True, exist_ok=True)
            server.before_each()
            setup = _Setup(server.address, bootstrap, tokens, w)
            drive = functools.partial(_drive, setup, scenario)
            totals[name] = run_under_callgrind(server, out_dir, w.timeout, drive)
        short_total, long_total = totals[short[0]], totals[long[0]]
        found[kind] = {
            "instructions_per_record": (long_total - short_total) / records,
            "short_run_instructions": short_total,
            "long_run_instructions": long_total,
            "records": records,
        }
    return found


@dataclass(frozen=True, slots=True)
class _Setup:
    address: tuple[str, int]
    bootstrap: str
    tokens: Tokens
    workload: SessionWorkload


@dataclass
class _Rig:
    fleet: MonitorFleet
    drivers: DriverFleet
    engines: EngineFleet
    publisher: Publisher
    clock: TelemetryClock
    secrets: SecretStore


async def _drive(setup: _Setup, scenario: Scenario, deadline: float) -> None:
    host, port = setup.address
    tokens, workload = setup.tokens, setup.workload
    secrets = SecretStore(None)
    cp_ids = [cp_id_for(i) for i in range(workload.cps)]
    fleet = MonitorFleet(
        FleetConfig(host, port, cp_ids=cp_ids, sources=["127.0.0.1"],
                    registration_token=tokens.registration, secrets=secrets,
                    connect_concurrency=10, timeout=workload.timeout, connect_attempts=1)
    )  # fmt: skip
    settings = KafkaSettings(setup.bootstrap, client_id="evbench-instructions")
    publisher = Publisher(settings)
    clock = TelemetryClock()
    group = f"evbench-instructions-{int(time.time() * 1000)}"
    drivers = DriverFleet(
        settings,
        publisher,
        [f"D-{i:05d}" for i in range(workload.cps)],
        clock,
        group_id=f"{group}-drivers",
        release=lambda _driver, _cp: None,
    )
    # supplies run until the run ends: no telemetry of their own, no ticket
    engines = EngineFleet(
        settings, publisher, set(cp_ids), clock, secrets.record_key,
        group_id=f"{group}-engines", session_s=10 * workload.timeout,
        telemetry_every=10 * workload.timeout,
    )  # fmt: skip
    stop = asyncio.Event()
    readers: list[FleetReader] = [drivers.consumer, engines.consumer]
    tasks: list[asyncio.Task[None]] = []
    try:
        await fleet.connect_all(deadline - time.monotonic())
        if len(fleet.links) != workload.cps:
            raise InstructionError(f"{len(fleet.links)} of {workload.cps} CPs connected")
        await _until(lambda: fleet.counters.acked >= workload.cps, deadline, "first statuses")
        await publisher.start()
        await asyncio.gather(*(r.assign() for r in readers))
        tasks = [asyncio.create_task(r.run(stop)) for r in readers]
        enrolled = await drivers.enroll(tokens.enrollment, secrets)
        if enrolled != workload.cps:
            raise InstructionError(f"{enrolled} of {workload.cps} drivers enrolled")
        await scenario(_Rig(fleet, drivers, engines, publisher, clock, secrets), deadline)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(r.close() for r in readers), return_exceptions=True)
        await publisher.close(5.0)
        await fleet.close()


async def _authorizations(count: int, rig: _Rig, deadline: float) -> None:
    """``count`` requests, one at a time, each on its own CP by its own driver."""
    d = rig.drivers
    for i in range(count):
        d.request(d.driver_ids[i], cp_id_for(i))
        await _until(lambda: d.unanswered == 0, deadline, f"answer {i + 1} of {count}")
    if d.counters.authorized != count:
        raise InstructionError(f"{d.counters.authorized} of {count} requests authorized")


async def _telemetry(sessions: int, rounds: int, rig: _Rig, deadline: float) -> None:
    """``sessions`` supplies started, then ``rounds`` of one telemetry each, every round
    relayed to its drivers before the next."""
    d, e = rig.drivers, rig.engines
    for i in range(sessions):
        d.request(d.driver_ids[i], cp_id_for(i))
    # the central answers, STARTs, reads SupplyStarted and tells each driver SUPPLYING
    await _until_updates(d, sessions, deadline, "supplies started")
    running = e.running()
    if len(running) != sessions:
        raise InstructionError(f"{len(running)} of {sessions} supplies started")
    started = time.time()
    for seq in range(1, rounds + 1):
        elapsed = time.time() - started + 1.0
        kwh = round(_POWER_KW * elapsed / 3600, 6)
        for cp_id, directive in running.items():
            assert directive.session_id is not None and directive.driver_id is not None
            rig.clock.mark(directive.session_id, seq)
            e.report(
                cp_id,
                Telemetry(session_id=directive.session_id, cp_id=cp_id,
                          driver_id=directive.driver_id, seq=seq, kwh=kwh,
                          eur=round(kwh * (directive.price or 0.0), 6), power_kw=_POWER_KW,
                          elapsed_s=elapsed, sent_at=time.time()),
            )  # fmt: skip
        await _until_updates(d, sessions * (seq + 1), deadline, f"telemetry round {seq}")
    if d.counters.errors or d.counters.telemetry_unmatched:
        raise InstructionError(f"telemetry not relayed cleanly: {d.counters.errors}")


async def _until_updates(drivers: DriverFleet, count: int, deadline: float, what: str) -> None:
    await _until(lambda: drivers.counters.updates >= count, deadline, what)


async def _until(done: Callable[[], bool], deadline: float, what: str) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise InstructionError(f"{what}: not in time")
        await asyncio.sleep(_POLL)
