"""The OCPP step's load as its own process: ``python -m evbench.ocppload``.

Simulated OCPP-J 1.6 stations (:mod:`evbench.ocppstation`) connect to the real
``evocpp`` gateway in ascending steps (the stations of a step stay for the
next), each making one call a second. At each step: the new stations connect
and boot, their CPs (``<station>-1``) are awaited ACTIVE at the central, then a
measurement window in which drivers (:class:`evbench.drivers.DriverFleet`,
enrolled and proving their requests as real drivers do) request supplies at a
steady rate at a few of the stations' CPs. Each supply is timed from the
driver's request to the ``RemoteStartTransaction`` at the station and to the
driver's first ``SUPPLYING`` update (the station's ``StartTransaction`` made
``SupplyStarted``); the station ends it after a few seconds with
``StopTransaction`` and the driver gets the ticket. After the window every
supply is drained before the next step connects more stations.

The result, one JSON object, gives each window in wall-clock time so the
harness reads the gateway's CPU over it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from evproto.kafka import KafkaSettings, Publisher
from evproto.logs import setup_logging
from evproto.messages import DriverUpdate, SessionPhase

from evbench.drivers import DriverFleet
from evbench.engines import TelemetryClock
from evbench.limits import raise_fd_limit
from evbench.loadgen import read_token, say, write_result
from evbench.monitors import SecretStore
from evbench.ocppstation import OcppStation, StationCounters
from evbench.procstat import cpu_seconds
from evbench.sessions import RequestScheduler
from evbench.stats import percentile

__all__ = ["OcppLoadPlan", "latency_summary", "main", "run_ocpp_load", "station_id_for"]

log = logging.getLogger("evbench.ocppload")
Progress = Callable[[str], None]


def station_id_for(index: int) -> str:
    return f"OCPPB-{index:05d}"


def latency_summary(seconds: list[float]) -> dict[str, Any]:
    """count, p50/p95/p99/max in milliseconds (None without samples)."""
    out: dict[str, Any] = {"count": len(seconds)}
    for name, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99), ("max_ms", 100)):
        value = percentile(seconds, q)
        out[name] = value * 1000 if value is not None else None
    return out


@dataclass(frozen=True)
class OcppLoadPlan:
    gateway: str  # ws://HOST:PORT/ocpp
    http: str  # the central's HTTP base URL: CPs awaited ACTIVE
    viewer_token: str
    kafka: str
    enrollment_token: str
    steps: tuple[int, ...]
    secrets: Path | None = None
    window: float = 10.0
    start_rate: float = 2.0  # supply requests per second in each window
    drivers: int = 24  # and as many stations' CPs where they charge
    charge_s: float = 2.0
    settle: float = 2.0
    ramp_deadline: float = 60.0  # seconds to connect a step's new stations
    active_deadline: float = 30.0  # then seconds for their CPs to be ACTIVE at the central
    connecting: int = 50  # stations connecting at once
    late_s: float = 1.0  # a call answered later than this is late
    run_id: str = "bench-ocpp"


@dataclass
class _Snapshot:
    at: float
    cpu: float
    sent: int
    answered: int
    late: int
    timeouts: int
    errors: int
    missed: int
    closed: int
    rtts: int

    @classmethod
    def of(cls, c: StationCounters) -> _Snapshot:
        return cls(time.time(), cpu_seconds(os.getpid()), c.sent, c.answered, c.late, c.timeouts,
                   sum(c.call_errors.values()), c.missed_ticks, c.closed, len(c.rtts))  # fmt: skip


def _window(a: _Snapshot, b: _Snapshot, c: StationCounters) -> dict[str, Any]:
    seconds = b.at - a.at
    return {
        "start": a.at,
        "end": b.at,
        "seconds": seconds,
        "calls": b.sent - a.sent,
        "answered": b.answered - a.answered,
        "calls_per_s": (b.answered - a.answered) / seconds if seconds > 0 else None,
        "late": b.late - a.late,
        "timeouts": b.timeouts - a.timeouts,
        "call_errors": b.errors - a.errors,
        "missed_ticks": b.missed - a.missed,
        "closed": b.closed - a.closed,
        "call_rtt": latency_summary(c.rtts[a.rtts : b.rtts]),
        "loadgen_cores": (b.cpu - a.cpu) / seconds if seconds > 0 else None,
    }


@dataclass
class _StartTimes:
    """Request → remote start at the station, and → the driver's first SUPPLYING."""

    requested: dict[str, float] = field(default_factory=dict)  # CP -> its request's instant
    to_station: list[float] = field(default_factory=list)
    to_driver: list[float] = field(default_factory=list)
    started: set[str] = field(default_factory=set)  # sessions whose start the driver saw
    every: dict[str, list[float]] = field(
        default_factory=lambda: {"to_station": [], "to_driver": []}
    )

    def at_station(self, cp_id: str, at: float) -> None:
        sent = self.requested.get(cp_id)
        if sent is not None:
            self.to_station.append(at - sent)

    def at_driver(self, update: DriverUpdate) -> None:
        if update.phase is not SessionPhase.SUPPLYING or update.session_id in self.started:
            return
        self.started.add(update.session_id)
        sent = self.requested.get(update.cp_id)
        if sent is not None:
            self.to_driver.append(time.time() - sent)

    def take(self) -> dict[str, Any]:
        """This step's latencies, and forget them (the run's stay in ``every``)."""
        taken = {
            "to_station": latency_summary(self.to_station),
            "to_driver": latency_summary(self.to_driver),
        }
        self.every["to_station"] += self.to_station
        self.every["to_driver"] += self.to_driver
        self.to_station, self.to_driver = [], []
        return taken


class _Drivers:
    """The Kafka side: enrolled drivers requesting supplies at a steady rate."""

    def __init__(self, plan: OcppLoadPlan, times: _StartTimes) -> None:
        settings = KafkaSettings(plan.kafka, client_id=f"evbench-{plan.run_id}")
        self.publisher = Publisher(settings)
        self.times = times
        driver_ids = [f"OD-{i:04d}" for i in range(plan.drivers)]
        self.scheduler = RequestScheduler(self._request, driver_ids, [], rate=plan.start_rate)
        self.fleet = DriverFleet(
            settings,
            self.publisher,
            driver_ids,
            TelemetryClock(),
            group_id=f"evbench-{plan.run_id}-drivers",
            release=self.scheduler.release,
        )
        self.fleet.on_update = times.at_driver
        self._secrets = SecretStore(plan.secrets)
        self._token = plan.enrollment_token
        self._stop = asyncio.Event()
        self._reading: asyncio.Task[None] | None = None
        self.offered: list[str] = []  # the CPs where they charge

    def _request(self, driver_id: str, cp_id: str) -> None:
        self.times.requested[cp_id] = time.time()
        self.fleet.request(driver_id, cp_id)

    async def start(self) -> int:
        await self.publisher.start()
        await self.fleet.consumer.assign()
        self._reading = asyncio.create_task(self.fleet.consumer.run(self._stop))
        return await self.fleet.enroll(self._token, self._secrets)

    async def drain(self, quiet: float = 10.0, cap: float = 40.0) -> bool:
        """Every request answered and every session ticketed; False when it stalled."""
        loop = asyncio.get_running_loop()
        start = last_change = loop.time()
        ledger = self.fleet.ledger
        last = -1
        while remaining := self.fleet.unanswered + ledger.open_sessions():
            if remaining != last:
                last, last_change = remaining, loop.time()
            if loop.time() - last_change > quiet or loop.time() - start > cap:
                return False
            await asyncio.sleep(0.1)
        return True

    def counts(self) -> dict[str, Any]:
        d = self.fleet.counters
        check = self.fleet.ledger.check()
        return {
            "requests": d.requests,
            "authorized": d.authorized,
            "denied": dict(d.denied),
            "unanswered": self.fleet.unanswered,
            "driver_errors": dict(d.errors),
            "tickets": d.tickets,
            "missing_tickets": check.missing_tickets,
            "duplicate_tickets": check.duplicate_tickets,
            "refused_records": d.refused,
            "publish_failures": self.fleet.publish_failures,
        }

    async def close(self) -> None:
        await self.scheduler.stop()
        self._stop.set()
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)
        await self.fleet.consumer.close()
        await self.publisher.close(5.0)


async def _active_at_central(plan: OcppLoadPlan, session: aiohttp.ClientSession) -> int:
    """How many of the stations' CPs the central shows ACTIVE or SUPPLYING."""
    url = f"{plan.http}/api/cps"
    query = {"state": "ACTIVE,SUPPLYING", "search": "OCPPB-"}
    headers = {"Authorization": f"Bearer {plan.viewer_token}"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with session.get(url, params=query, headers=headers, timeout=timeout) as response:
        response.raise_for_status()
        body = await response.json()
    return sum(1 for cp in body["cps"] if str(cp.get("cp_id", "")).startswith("OCPPB-"))


async def _await_active(
    plan: OcppLoadPlan, session: aiohttp.ClientSession, wanted: int, deadline: float
) -> int:
    active = 0
    while time.monotonic() < deadline:
        try:
            active = await _active_at_central(plan, session)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("central's CP list: %s", exc)
        if active >= wanted:
            break
        await asyncio.sleep(1.0)
    return active


def _since(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The counts of one step: ``after`` less ``before``, key by key (dicts of counts too)."""
    out: dict[str, Any] = {}
    for key, value in after.items():
        if isinstance(value, dict):
            was = before.get(key, {})
            out[key] = {k: n - was.get(k, 0) for k, n in value.items() if n - was.get(k, 0)}
        else:
            out[key] = value - before.get(key, 0)
    return out


class _Fleet:
    def __init__(self, plan: OcppLoadPlan, counters: StationCounters, times: _StartTimes) -> None:
        self.plan = plan
        self.counters = counters
        self.times = times
        self.stations: list[OcppStation] = []
        self.held: list[OcppStation] = []

    async def grow(self, session: aiohttp.ClientSession, total: int, progress: Progress) -> float:
        """Connect stations up to ``total``; the seconds it took."""
        plan = self.plan
        started = time.monotonic()
        gate = asyncio.Semaphore(plan.connecting)
        new = [
            OcppStation(
                station_id_for(i), plan.gateway, self.counters,
                on_remote_start=self.times.at_station, charge_s=plan.charge_s, late_s=plan.late_s,
            )
            for i in range(len(self.stations), total)
        ]  # fmt: skip
        self.stations += new

        async def connect(station: OcppStation) -> None:
            async with gate:
                if await station.connect(session):
                    station.start_ticking(random.random())
                    self.held.append(station)

        async def report() -> None:
            while True:
                await asyncio.sleep(10.0)
                progress(f"{len(self.held)}/{total} stations connected")

        reporter = asyncio.create_task(report())
        try:
            await asyncio.wait_for(
                asyncio.gather(*(connect(s) for s in new)), max(1.0, plan.ramp_deadline)
            )
        except TimeoutError:
            progress(f"gave up connecting after {plan.ramp_deadline:g} s")
        finally:
            reporter.cancel()
        return time.monotonic() - started

    async def close(self) -> None:
        await asyncio.gather(*(s.close() for s in self.stations), return_exceptions=True)


async def _step(
    plan: OcppLoadPlan,
    session: aiohttp.ClientSession,
    fleet: _Fleet,
    drivers: _Drivers,
    *,
    total: int,
    progress: Progress,
) -> dict[str, Any]:
    """Grow the fleet to ``total`` stations, then one window with remote starts, drained."""
    progress(f"connecting stations up to {total}")
    ramp_s = await fleet.grow(session, total, progress)
    deadline = time.monotonic() + plan.active_deadline
    active = await _await_active(plan, session, len(fleet.held), deadline)
    progress(f"{len(fleet.held)} stations connected in {ramp_s:.1f} s, "
             f"{active} CPs active at the central")  # fmt: skip
    if not drivers.offered:  # the CPs where drivers charge: the first stations'
        drivers.offered = [s.cp_id for s in fleet.held[: plan.drivers]]
        drivers.scheduler.offer_cps(drivers.offered)
    await asyncio.sleep(plan.settle)
    progress("window start")
    counted = drivers.counts()
    before = _Snapshot.of(fleet.counters)
    drivers.scheduler.start()
    await asyncio.sleep(plan.window)
    await drivers.scheduler.stop()
    after = _Snapshot.of(fleet.counters)
    progress("window end")
    drained = await drivers.drain()
    return {
        "stations": total,
        "connected": len(fleet.held),
        "active_at_central": active,
        "ramp_s": ramp_s,
        "window": _window(before, after, fleet.counters),
        "remote_start": {
            **fleet.times.take(), "drained": drained, **_since(counted, drivers.counts()),
        },
    }  # fmt: skip


async def run_ocpp_load(plan: OcppLoadPlan, progress: Progress = lambda _m: None) -> dict[str, Any]:
    fd_limit = raise_fd_limit()
    counters = StationCounters()
    times = _StartTimes()
    fleet = _Fleet(plan, counters, times)
    drivers = _Drivers(plan, times)
    connector = aiohttp.TCPConnector(limit=0)
    steps: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(connector=connector) as session:
        try:
            enrolled = await drivers.start()
            progress(f"{enrolled} drivers enrolled")
            for total in plan.steps:
                step = await _step(plan, session, fleet, drivers, total=total, progress=progress)
                steps.append(step)
                if step["connected"] < total or step["active_at_central"] < total:
                    progress(f"{total} stations not all online: no larger step")
                    break
        finally:
            await fleet.close()
            await drivers.close()
    stations = asdict(counters)
    del stations["rtts"]
    return {
        "plan": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(plan).items()
                 if k not in ("viewer_token", "enrollment_token")},
        "fd_limit": fd_limit,
        "steps": steps,
        "stations": stations,
        "call_rtt": latency_summary(counters.rtts),
        "remote_start": {k: latency_summary(v) for k, v in times.every.items()},
    }  # fmt: skip


def _steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if not steps or min(steps) < 1 or list(steps) != sorted(steps):
        raise argparse.ArgumentTypeError("steps are ascending counts of at least 1 station")
    return steps


def _parser() -> argparse.ArgumentParser:
    d = OcppLoadPlan("", "", "", "", "", ())
    p = argparse.ArgumentParser(prog="python -m evbench.ocppload", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--gateway", required=True, help="ws://HOST:PORT/ocpp of the gateway")
    p.add_argument("--http", required=True, help="the central's HTTP base URL")
    p.add_argument("--viewer-token-file", type=Path, required=True)
    p.add_argument("--kafka", required=True, help="Kafka bootstrap HOST:PORT")
    p.add_argument("--enrollment-token-file", type=Path, required=True)
    p.add_argument("--secrets", type=Path, help="JSON file keeping driver secrets between runs")
    p.add_argument("--steps", type=_steps, required=True, help="stations per step, ascending")
    p.add_argument("--window", type=float, default=d.window, help="seconds measured per step")
    p.add_argument("--start-rate", type=float, default=d.start_rate, help="supplies per second")
    p.add_argument("--drivers", type=int, default=d.drivers, help="drivers (and their CPs)")
    p.add_argument("--charge-s", type=float, default=d.charge_s, help="seconds a supply lasts")
    p.add_argument("--settle", type=float, default=d.settle)
    p.add_argument("--ramp-deadline", type=float, default=d.ramp_deadline)
    p.add_argument("--active-deadline", type=float, default=d.active_deadline)
    p.add_argument("--run-id", default=f"ocpp-{int(time.time())}", help="consumer group prefix")
    p.add_argument("--out", type=Path, help="write the JSON result here instead of stdout")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.drivers < 1 or args.start_rate <= 0 or args.window <= 0:
        parser.error("--drivers, --start-rate and --window must be above 0")
    plan = OcppLoadPlan(
        gateway=args.gateway,
        http=args.http,
        viewer_token=read_token(parser, args.viewer_token_file, "--viewer-token-file"),
        kafka=args.kafka,
        enrollment_token=read_token(parser, args.enrollment_token_file, "--enrollment-token-file"),
        steps=args.steps,
        secrets=args.secrets,
        window=args.window,
        start_rate=args.start_rate,
        drivers=args.drivers,
        charge_s=args.charge_s,
        settle=args.settle,
        ramp_deadline=args.ramp_deadline,
        active_deadline=args.active_deadline,
        run_id=args.run_id,
    )
    setup_logging("evbench-ocppload", args.log_level)
    write_result(asyncio.run(run_ocpp_load(plan, say)), args.out)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
