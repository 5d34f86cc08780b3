"""One load step as its own process: ``python -m evbench.loadgen``.

N simulated CPs connect and authenticate (or register), report status every
interval; sample CPs flip KO/OK while the central's SSE stream is watched;
then M simulated drivers request supplies at a steady rate from the engine
fleet's CPs. The result, one JSON object, gives the measurement windows in
wall-clock time so the harness can read the central's CPU over them.

Phases: ramp (connect all) -> settle -> heartbeat window (status only, plus
probes) -> session ramp -> session window -> drain (no new requests, every
supply unplugged, every ticket awaited) -> checks.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evproto.config import parse_hostport
from evproto.errors import ConfigError
from evproto.kafka import KafkaSettings, Publisher
from evproto.logs import setup_logging

from evbench.detection import detect_killed
from evbench.drivers import DriverFleet, SampleReader
from evbench.echo import BrokerEcho
from evbench.engines import EngineFleet, TelemetryClock, proof_cost
from evbench.kafkaread import FleetReader
from evbench.limits import loopback_sources, raise_fd_limit
from evbench.link import MonitorLink
from evbench.monitors import FleetConfig, MonitorFleet, SecretStore, cp_id_for
from evbench.sessions import RequestScheduler
from evbench.sse import DashboardWatcher, ProbeRunner
from evbench.stats import summarize

__all__ = ["LoadPlan", "main", "run_load", "say", "write_result"]

log = logging.getLogger("evbench.loadgen")
_RTT_SAMPLES = 200_000


@dataclass(frozen=True)
class LoadPlan:
    central: str  # HOST:PORT of the monitor port (or of the bare server)
    cps: int
    http: str | None = None  # the central's HTTP base URL, for the SSE probes
    viewer_token: str = ""  # the stream of the SSE probes needs it
    kafka: str | None = None  # bootstrap; None = no sessions
    registration_token: str | None = None  # None = bare server: no authentication
    enrollment_token: str = ""  # the simulated drivers enroll themselves with it
    secrets: Path | None = None
    first_index: int = 0
    drivers: int = 0
    session_s: float = 20.0
    rate: float = 0.0  # supply requests per second
    heartbeat_window: float = 15.0
    session_window: float = 30.0
    session_ramp: float | None = None  # default: one session length
    probes: int = 20
    interval: float = 1.0
    detect_killed: bool = False  # at the end, time a killed CP's DISCONNECTED (needs probes)
    sample_readers: bool = True  # one real driver consumer per design (reads per message)
    sources: int = 8
    settle: float = 3.0
    ramp_deadline: float = 120.0  # CPs not connected by then are given up
    run_id: str = "bench"


def _cpu_now() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class _Window:
    start: float = 0.0
    end: float = 0.0
    acked0: int = 0
    acked1: int = 0
    late0: int = 0
    late1: int = 0
    cpu0: float = 0.0
    cpu1: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        seconds = self.end - self.start
        return {
            "start": self.start,
            "end": self.end,
            "seconds": seconds,
            "heartbeats_acked": self.acked1 - self.acked0,
            "heartbeats_late": self.late1 - self.late0,
            "loadgen_cores": (self.cpu1 - self.cpu0) / seconds if seconds > 0 else None,
        }


class _SessionRig:
    """The Kafka side of a step: engine fleet, driver fleet, sample readers, scheduler."""

    def __init__(self, plan: LoadPlan, session_cps: list[str], secrets: SecretStore) -> None:
        assert plan.kafka is not None
        settings = self.settings = KafkaSettings(plan.kafka, client_id=f"evbench-{plan.run_id}")
        self.publisher = Publisher(settings)
        clock = TelemetryClock()
        driver_ids = [f"D-{i:05d}" for i in range(plan.drivers)]
        group = f"evbench-{plan.run_id}"
        self.engines = EngineFleet(
            settings,
            self.publisher,
            set(session_cps),
            clock,
            secrets.record_key,
            group_id=f"{group}-engines",
            session_s=plan.session_s,
        )
        self.scheduler = RequestScheduler(self._request, driver_ids, session_cps, rate=plan.rate)
        self.drivers = DriverFleet(
            settings,
            self.publisher,
            driver_ids,
            clock,
            group_id=f"{group}-drivers",
            release=self.scheduler.release,
        )
        sample = driver_ids[0] if driver_ids else "D-00000"
        # the whole-topic reader fetches every batch of both driver topics again
        # (twice the broker's fetch work on them): only where asked
        self.samples = (
            [
                SampleReader(settings, sample, whole_topics=False, group_id=f"{group}-sample-ours"),
                SampleReader(settings, sample, whole_topics=True, group_id=f"{group}-sample-seed"),
            ]
            if plan.sample_readers
            else []
        )
        self.supplying_samples: list[tuple[float, int]] = []
        self._secrets = secrets
        self._enrollment_token = plan.enrollment_token
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _request(self, driver_id: str, cp_id: str) -> None:
        self.drivers.request(driver_id, cp_id)

    @property
    def consumers(self) -> list[FleetReader]:
        return [self.engines.consumer, self.drivers.consumer, *(s.consumer for s in self.samples)]

    async def start(self) -> None:
        await self.publisher.start()
        await asyncio.gather(*(c.assign() for c in self.consumers))
        for consumer in self.consumers:
            self._tasks.append(asyncio.create_task(consumer.run(self._stop)))
        self._tasks.append(asyncio.create_task(self._sample_supplying()))
        await self.drivers.enroll(self._enrollment_token, self._secrets)
        for sample in self.samples:
            sample.root_key = self.drivers.root_key(sample.driver_id)

    async def _sample_supplying(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(1.0)
            self.supplying_samples.append((time.time(), self.engines.supplying))

    async def drain(self, quiet: float = 15.0, cap: float = 60.0) -> None:
        """No new requests; every supply unplugged; wait for the answers and tickets.

        Waits while they keep arriving: it gives up after ``quiet`` seconds without
        progress or ``cap`` seconds in all, and what is still open then is reported.
        """
        await self.scheduler.stop()
        await _while_progressing(lambda: self.drivers.unanswered, quiet, cap)
        self.engines.unplug_all()
        await self.engines.wait_idle(quiet)
        await _while_progressing(self.drivers.ledger.open_sessions, quiet, cap)

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in self.consumers), return_exceptions=True)
        await self.publisher.close(5.0)

    def result(self, window: _Window) -> dict[str, Any]:
        d, e = self.drivers, self.engines.counters
        check = d.ledger.check()
        in_window = [n for at, n in self.supplying_samples if window.start <= at <= window.end]
        tickets_per_session = e.tickets_by_session.values()
        return {
            "drivers_enrolled": d.counters.enrolled,
            "enroll_refused": d.counters.enroll_refused,
            "not_enrolled": d.counters.not_enrolled,
            "refused_records": d.counters.refused,
            "unproven_directives": e.unproven,
            "requests": d.counters.requests,
            "authorized": d.counters.authorized,
            "denied": d.counters.denied,
            "skipped": self.scheduler.skipped,
            "unanswered": d.unanswered,
            "duplicate_responses": d.counters.duplicate_responses,
            "unknown_responses": d.counters.unknown_responses,
            "driver_errors": d.counters.errors,
            "concurrent_max": max((n for _at, n in self.supplying_samples), default=0),
            "concurrent_mean": _mean(in_window),
            "authorization": summarize(d.counters.auth_latencies).to_dict(),
            "telemetry": summarize(d.counters.telemetry_latencies).to_dict(),
            "split_at_central": {
                "authorization_until": summarize(d.counters.auth_until_central).to_dict(),
                "authorization_after": summarize(d.counters.auth_after_central).to_dict(),
                "telemetry_until": summarize(d.counters.telemetry_until_central).to_dict(),
                "telemetry_after": summarize(d.counters.telemetry_after_central).to_dict(),
            },
            "telemetry_unmatched": d.counters.telemetry_unmatched,
            "ledger": {
                **asdict(check),
                "clean": check.clean,
                "unknown_examples": d.ledger.unknown_examples,
            },
            "engine": {
                "starts": e.starts,
                "duplicate_starts": e.duplicate_starts,
                "busy_starts": e.busy_starts,
                "telemetry": e.telemetry,
                "tickets": e.tickets,
                "sessions_with_more_than_one_ticket": sum(1 for n in tickets_per_session if n > 1),
                "publish_failures": e.publish_failures + d.publish_failures,
            },
            "reads_per_meant": d.tally.per_meant(d.driver_ids),
            "sample_readers": [s.result() for s in self.samples],
            "proof_cost_us": proof_cost(),  # per message, on this machine
        }


def _probe_ids(cp_ids: list[str], count: int) -> set[str]:
    """Sample CPs spread over the fleet, from its first: they connect early in a ramp."""
    if count <= 0:
        return set()
    stride = max(1, len(cp_ids) // count)
    return set(cp_ids[::stride][:count])


async def _report_ramp(fleet: MonitorFleet, cps: int, progress: Callable[[str], None]) -> None:
    while True:
        await asyncio.sleep(10.0)
        progress(f"{fleet.auth.connected}/{cps} CPs connected, errors {fleet.auth.errors}")


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


async def _while_progressing(remaining: Callable[[], int], quiet: float, cap: float) -> bool:
    """Wait until ``remaining()`` is 0; False after ``quiet`` s without progress or ``cap`` s."""
    loop = asyncio.get_running_loop()
    start = last_change = loop.time()
    last = remaining()
    while last:
        now = loop.time()
        if now - last_change > quiet or now - start > cap:
            return False
        await asyncio.sleep(0.1)
        current = remaining()
        if current != last:
            last, last_change = current, loop.time()
    return True


async def _window(
    fleet: MonitorFleet, seconds: float, name: str, progress: Callable[[str], None]
) -> _Window:
    progress(f"window {name} start")
    w = _Window(time.time(), 0.0, fleet.counters.acked, 0, fleet.counters.late, 0, _cpu_now())
    await asyncio.sleep(seconds)
    w.end, w.acked1, w.late1, w.cpu1 = (
        time.time(),
        fleet.counters.acked,
        fleet.counters.late,
        _cpu_now(),
    )
    progress(f"window {name} end")
    return w


async def run_load(
    plan: LoadPlan, progress: Callable[[str], None] = lambda _m: None
) -> dict[str, Any]:
    """Run one load step and return its result (JSON-ready)."""
    fd_limit = raise_fd_limit()
    host, port = parse_hostport(plan.central, what="--central", default_host="127.0.0.1")
    cp_ids = [cp_id_for(plan.first_index + i) for i in range(plan.cps)]
    seconds_total = plan.heartbeat_window + plan.session_window + 2 * plan.session_s
    fleet = MonitorFleet(
        FleetConfig(
            host=host,
            port=port,
            cp_ids=cp_ids,
            sources=loopback_sources(plan.sources),
            registration_token=plan.registration_token,
            secrets=SecretStore(plan.secrets),
            interval=plan.interval,
            rtt_every=max(1, int(plan.cps * seconds_total / plan.interval / _RTT_SAMPLES)),
        )
    )
    probe_ids = _probe_ids(cp_ids, plan.probes) if plan.http else set()
    rig: _SessionRig | None = None
    echo: BrokerEcho | None = None
    if plan.kafka and plan.drivers and plan.rate > 0:
        rig = _SessionRig(plan, [c for c in cp_ids if c not in probe_ids], fleet.config.secrets)
        await rig.start()
        echo = BrokerEcho(rig.settings)
        await echo.start()
    watcher = DashboardWatcher(plan.http, plan.viewer_token) if plan.http else None
    if watcher is not None:
        await watcher.start()
    result: dict[str, Any] = {
        "plan": {
            k: str(v) if isinstance(v, Path) else v
            for k, v in asdict(plan).items()
            if k not in ("registration_token", "viewer_token", "enrollment_token")
        },
        "fd_limit": fd_limit,
    }
    probes: ProbeRunner | None = None
    probe_links: list[MonitorLink] = []
    killed_closed = 0  # links of killed CPs the central closed: expected, not an error
    windows: dict[str, _Window] = {}
    try:
        ramp_start = time.time()
        progress(f"connecting {plan.cps} CPs")
        fleet.start_heartbeats()
        reporter = asyncio.create_task(_report_ramp(fleet, plan.cps, progress))
        try:
            await fleet.connect_all(deadline=plan.ramp_deadline)
        finally:
            reporter.cancel()
        result["ramp_s"] = time.time() - ramp_start
        progress(f"{fleet.auth.connected} CPs connected in {result['ramp_s']:.1f}s")
        # the fleet's objects live to the end: out of the collector's full passes, which
        # at 10,000+ links stall the loop long enough to make heartbeats late
        gc.freeze()
        await asyncio.sleep(plan.settle)
        if rig is not None:
            rig.scheduler.offer_cps([c for c in fleet.links if c not in probe_ids])
        if watcher is not None and probe_ids:
            probe_links = [fleet.links[c] for c in sorted(probe_ids) if c in fleet.links]
            probes = ProbeRunner(watcher, probe_links)
            probes.start()
        windows["heartbeat"] = await _window(fleet, plan.heartbeat_window, "heartbeat", progress)
        if rig is not None:
            progress(f"sessions at {plan.rate}/s")
            rig.scheduler.start()
            await asyncio.sleep(plan.session_s if plan.session_ramp is None else plan.session_ramp)
            if echo is not None:
                echo.recording = True
            windows["sessions"] = await _window(fleet, plan.session_window, "sessions", progress)
            if echo is not None:
                echo.recording = False
        result["held"] = fleet.held
        if probes is not None:
            await probes.stop()
        if rig is not None:
            progress("draining sessions")
            await rig.drain()
            result["sessions"] = rig.result(windows["sessions"])
        result["held_at_end"] = fleet.held
        if plan.detect_killed and watcher is not None and len(probe_links) >= 2:
            closed = fleet.counters.closed_by_peer
            progress("killing two CPs: one link reset, one silent")
            killed = await detect_killed(watcher, probe_links[0], probe_links[1], fleet.interval)
            result["killed_cp"] = killed.to_dict()
            killed_closed = fleet.counters.closed_by_peer - closed
    finally:
        if echo is not None:
            await echo.close()
            result["broker_echo"] = {
                **summarize(echo.latencies).to_dict(),
                "sent": echo.sent,
                "received": echo.received,
                "errors": echo.errors,
            }
        if rig is not None:
            await rig.close()
        if watcher is not None:
            await watcher.close()
        await fleet.close()
    result["windows"] = {name: w.to_dict() for name, w in windows.items()}
    result["monitors"] = _monitor_result(fleet)
    result["monitors"]["closed_by_peer"] -= killed_closed
    if probes is not None and watcher is not None:
        result["dashboard"] = {
            **summarize(probes.latencies).to_dict(),
            "flips": probes.counters.flips,
            "timeouts": probes.counters.timeouts,
            "sse_events": watcher.events,
        }
    return result


def _monitor_result(fleet: MonitorFleet) -> dict[str, Any]:
    c, a = fleet.counters, fleet.auth
    return {
        "requested": len(fleet.config.cp_ids),
        "connected": a.connected,
        "connect_failed": a.connect_failed,
        "registered": a.registered,
        "authenticated": a.authenticated,
        "rejected": a.rejected,
        "gave_up": a.gave_up,
        "connect_errors": a.errors,
        "connect_auth": summarize(a.seconds).to_dict(),
        "heartbeats": c.heartbeats,
        "acked": c.acked,
        "late": c.late,
        "nacked": c.nacked,
        "send_failed": c.send_failed,
        "closed_by_peer": c.closed_by_peer,
        "pushed": c.pushed,
        "bad_frames": c.bad_frames,
        "ack_rtt": summarize(c.ack_rtts).to_dict(),
    }


def say(message: str) -> None:
    """A progress line on stderr; the harness follows the ``loadgen: …`` ones."""
    print(f"loadgen: {message}", file=sys.stderr, flush=True)


def write_result(result: dict[str, Any], out: Path | None) -> None:
    """The step's JSON result into ``out``, or on stdout."""
    text = json.dumps(result, indent=2)
    if out is not None:
        out.write_text(text + "\n")
    else:
        print(text)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evbench.loadgen",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--central", required=True, help="HOST:PORT of the central's monitor port")
    p.add_argument("--http", help="the central's HTTP base URL (SSE probes); omit for none")
    p.add_argument("--kafka", help="Kafka bootstrap HOST:PORT; omit for no sessions")
    p.add_argument(
        "--registration-token-file",
        type=Path,
        help="file holding the registration token; omit against the bare server",
    )
    p.add_argument(
        "--enrollment-token-file",
        type=Path,
        help="file holding the enrollment token the simulated drivers enroll with (sessions)",
    )
    p.add_argument(
        "--viewer-token-file", type=Path, help="file holding the viewer token (with --http)"
    )
    p.add_argument("--secrets", type=Path, help="JSON file keeping CP secrets between runs")
    p.add_argument("--cps", type=int, required=True, help="simulated charging points (N)")
    p.add_argument("--first-index", type=int, default=0, help="index of the first CP id")
    p.add_argument("--drivers", type=int, default=0, help="simulated drivers (M)")
    p.add_argument("--session-s", type=float, default=20.0, help="supply length, seconds")
    p.add_argument("--rate", type=float, default=0.0, help="supply requests per second")
    p.add_argument(
        "--heartbeat-window", type=float, default=15.0, help="seconds measured, status only"
    )
    p.add_argument(
        "--duration", type=float, default=30.0, help="seconds measured with sessions running"
    )
    p.add_argument("--ramp-deadline", type=float, default=120.0, help="seconds to connect every CP")
    p.add_argument("--settle", type=float, default=3.0, help="seconds between ramp and windows")
    p.add_argument("--probes", type=int, default=20, help="CPs flipped KO/OK for the SSE latency")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between status reports")
    p.add_argument(
        "--detect-killed",
        action="store_true",
        help="at the end, kill two probe CPs (reset, silent) and time their DISCONNECTED",
    )
    p.add_argument(
        "--no-sample-readers",
        action="store_true",
        help="no real sample driver consumers (the one reading whole topics loads the broker)",
    )
    p.add_argument("--sources", type=int, default=8, help="loopback source addresses")
    p.add_argument("--run-id", default=f"run-{int(time.time())}", help="prefix of consumer groups")
    p.add_argument("--out", type=Path, help="write the JSON result here instead of stdout")
    p.add_argument("--log-level", default="WARNING")
    return p


def read_token(parser: argparse.ArgumentParser, path: Path | None, flag: str) -> str:
    if path is None:
        return ""
    try:
        return path.read_text().strip()
    except OSError as exc:
        parser.error(f"{flag}: {exc.strerror}")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.cps < 1 or args.drivers < 0 or args.rate < 0 or args.session_s <= 0:
        parser.error("--cps must be at least 1; --drivers, --rate at least 0; --session-s above 0")
    token = None
    if args.registration_token_file is not None:
        try:
            token = args.registration_token_file.read_text().strip()
        except OSError as exc:
            parser.error(f"--registration-token-file: {exc.strerror}")
    viewer_token = read_token(parser, args.viewer_token_file, "--viewer-token-file")
    enrollment_token = read_token(parser, args.enrollment_token_file, "--enrollment-token-file")
    plan = LoadPlan(
        central=args.central,
        cps=args.cps,
        http=args.http,
        viewer_token=viewer_token,
        kafka=args.kafka,
        registration_token=token,
        enrollment_token=enrollment_token,
        secrets=args.secrets,
        first_index=args.first_index,
        drivers=args.drivers,
        session_s=args.session_s,
        rate=args.rate,
        heartbeat_window=args.heartbeat_window,
        session_window=args.duration,
        probes=args.probes,
        interval=args.interval,
        detect_killed=args.detect_killed,
        sample_readers=not args.no_sample_readers,
        settle=args.settle,
        ramp_deadline=args.ramp_deadline,
        sources=args.sources,
        run_id=args.run_id,
    )
    setup_logging("evbench-loadgen", args.log_level)
    try:
        result = asyncio.run(run_load(plan, say))
    except ConfigError as exc:
        parser.error(exc.message)
    write_result(result, args.out)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
