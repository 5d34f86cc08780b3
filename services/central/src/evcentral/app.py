"""Wiring and lifecycle of the central: one asyncio process.

Start: database (migrations, CPs all DISCONNECTED, open sessions), HTTP,
monitor port, then Kafka in the background (topics, every CP's state once,
the consumer) so the central serves and reports "not ready" while the broker
is away. Stop: stop consuming (the batch in hand is committed), close links,
flush what is kept in memory, deliver what is queued for Kafka.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import ssl
import time
from pathlib import Path
from typing import Any

from aiohttp import web
from evproto.config import parse_hostport
from evproto.connection import ErrorBudget
from evproto.logs import kv
from evproto.metrics import serve_metrics, watch_loop_lag
from evproto.routing import Router
from evproto.schema import MsgType
from evproto.states import CpState
from prometheus_client import CollectorRegistry

from evcentral.certificate import ServerCertificate
from evcentral.core import Core
from evcentral.credentials import Authenticator
from evcentral.db import Database
from evcentral.enrollment import DriverEnrollment
from evcentral.history import StateHistory
from evcentral.http.access import Access
from evcentral.http.api import HttpDeps, Readiness, build_app
from evcentral.http.events import EventHub
from evcentral.journal import Journal
from evcentral.kafka_io import KafkaIO
from evcentral.keyring import Keyring
from evcentral.metrics import CentralMetrics
from evcentral.monitor_server import MonitorLimits, MonitorServer
from evcentral.operator_actions import OperatorActions
from evcentral.outbox import Outbox
from evcentral.ratelimit import PerAddressLimiter
from evcentral.record_proofs import ProofGate
from evcentral.refusals import Refusals
from evcentral.registry import ChargingPoint, Registry
from evcentral.sessions import SessionManager
from evcentral.settings import CentralSettings
from evcentral.supply_requests import SupplyDesk
from evcentral.tokens import kept_token

__all__ = ["Central", "serve"]

log = logging.getLogger("evcentral")

_FLUSH_INTERVAL = 1.0
# last_seen matters only across a restart; rewriting it for every reporting CP every
# second cost ~2-7 % of the central's CPU at 10,000 CPs (docs/benchmarks.md).
_LAST_SEEN_INTERVAL = 30.0
_PROBE_INTERVAL = 3.0
_CERTIFICATE_CHECK_INTERVAL = 30.0  # seconds between looks at the TLS files
_PRUNE_INTERVAL = 3600.0
# An answered request id only guards against a replay, and a request is stale after
# its ttl (at most an hour): a day is plenty.
_REQUEST_ID_RETENTION = 86400.0
_LOOPS_GRACE = 5.0  # for the consumer's last commit and the probe's round trip


class Central:
    def __init__(
        self,
        settings: CentralSettings,
        *,
        metrics_registry: CollectorRegistry | None = None,
        consumer_group: str = "evcentral",
    ) -> None:
        self.settings = settings
        self._made_tokens: list[tuple[str, Path]] = []  # generated, kept beside the database
        self.operator_token = settings.operator_token or self._kept("operator-token")
        self.viewer_token = settings.viewer_token or self._kept("viewer-token")
        self.access = Access(self.operator_token, self.viewer_token)
        self.metrics = CentralMetrics(metrics_registry)
        self.journal = Journal()
        self.history = StateHistory()
        self.refusals = Refusals(self.journal, self.metrics.refused)
        self.db = Database(settings.db)
        self.registry = Registry(self._published_change, self._tile_change)
        self.hub = EventHub(
            self.registry,
            self.journal,
            self.access,
            max_clients=settings.max_event_clients,
            write_timeout=settings.event_write_timeout,
            capped=lambda reason: self.metrics.capped.labels(reason).inc(),
        )
        router = Router()
        self.kafka = KafkaIO(
            settings.kafka_settings(),
            router,
            group_id=consumer_group,
            create=settings.create_topics,
        )
        self.keys = Keyring(self.db, self.registry)
        self.outbox = Outbox(self.kafka.publisher, self.keys, self.db)
        core = Core(self.db, self.registry, self.outbox, self.journal, self.metrics)
        self.sessions = SessionManager(
            core,
            start_timeout=settings.start_timeout,
            abort_grace=settings.abort_grace,
            max_power_kw=settings.max_power_kw,
            energy_margin_kwh=settings.energy_margin_kwh,
            broker_ok=lambda: self.kafka.broker_ok,
        )
        self.desk = SupplyDesk(core, self.sessions)
        self.enrollment = DriverEnrollment(core, self.keys)
        gate = ProofGate(core, self.keys, enrollment_token=settings.enrollment_token)
        router.on(MsgType.SUPPLY_REQUEST)(gate.guard(self.desk.on_request))
        router.on(MsgType.SUPPLY_STOP)(gate.guard(self.desk.on_stop))
        router.on(MsgType.ENROLL_REQUEST)(gate.guard(self.enrollment.on_enroll))
        router.on(MsgType.SUPPLY_STARTED)(gate.guard(self.sessions.on_started))
        router.on(MsgType.TELEMETRY)(gate.guard(self.sessions.on_telemetry))
        router.on(MsgType.TICKET)(gate.guard(self.sessions.on_ticket))
        authenticator = Authenticator(
            self.db,
            self.registry,
            registration_token=settings.registration_token,
            default_price=settings.default_price,
            refusals=self.refusals,
            limiter=PerAddressLimiter(settings.registration_rate, settings.registration_burst),
        )
        self.monitors = MonitorServer(
            core,
            authenticator,
            self.sessions,
            status_interval=settings.heartbeat_interval,
            idle_timeout=settings.idle_timeout,
            handshake_timeout=settings.handshake_timeout,
            limits=MonitorLimits(
                max_pending=settings.max_pending_monitors,
                max_pending_per_address=settings.max_pending_per_address,
                error_budget=ErrorBudget(settings.link_error_budget, settings.link_error_window),
            ),
        )
        self.operator = OperatorActions(
            core, self.sessions, self.monitors.push_price, self.monitors.disconnect
        )
        self.metrics.connected_monitors.set_function(lambda: self.registry.connected)
        self.metrics.pending_monitors.set_function(lambda: self.monitors.pending)
        self.metrics.database_size.set_function(self.db.size_bytes)
        self.metrics.outbox_records.set_function(lambda: self.outbox.kept_records)
        self.metrics.event_clients.set_function(lambda: self.hub.clients)
        self.metrics.ready.set_function(lambda: 1 if self.readiness().ready else 0)
        self.metrics.kafka.stats = [self.kafka.produced, self.kafka.consumed]
        self.metrics.kafka.lag = self.kafka.lag
        self.metrics.cp_states.cps = self.registry.cps.values
        self._publish_states = False  # until the topics exist; then every CP once
        self._stop = asyncio.Event()
        self._last_seen_flushed = time.monotonic()
        self._pruned_at = -_PRUNE_INTERVAL
        self._loops: asyncio.Task[None] | None = None
        self._certificate: ServerCertificate | None = None
        self._runner: web.AppRunner | None = None
        self.http_port = 0

    # --- the CP state feed ------------------------------------------------------------

    def _published_change(self, cp: ChargingPoint, old: CpState | None) -> None:
        self.metrics.set_cp_state(old, cp.state)
        self.history.record(cp.cp_id, cp.state, cp.health)
        if self._publish_states:
            self.outbox.cp_state(cp)

    def _tile_change(self, cp: ChargingPoint) -> None:
        self.hub.mark(cp)

    def _topics_ready(self) -> None:
        self._publish_states = True
        for cp in self.registry:
            self.outbox.cp_state(cp)
        log.info("published every CP state %s", kv(cps=len(self.registry)))
        self.outbox.send_kept()  # what a crash left in the outbox

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        version = self.db.migrate()
        for row in self.db.load_cps():
            self.registry.add(ChargingPoint.from_row(row))
        restored = self.sessions.restore()
        log.info(
            "database loaded %s",
            kv(path=s.db, schema=version, cps=len(self.registry), open_sessions=restored),
        )
        for name, path in self._made_tokens:
            log.warning("no %s configured; generated one %s", name, kv(file=path, mode="0600"))
        await self.kafka.start()
        await self._start_http()
        serve_metrics(s.metrics, self.metrics.registry)  # /metrics is also on --http
        host, port = parse_hostport(s.listen, what="--listen")
        await self.monitors.start(host, port, self._tls_context())
        self.hub.start()
        self._loops = asyncio.create_task(self._run_loops(), name="loops")

    async def _run_loops(self) -> None:
        """The central's loops, each ending on its own once stop is set."""
        async with asyncio.TaskGroup() as loops:
            loops.create_task(self._consume(), name="kafka")
            loops.create_task(self._flush_forever(), name="flush")
            loops.create_task(self._probe_forever(), name="probe")
            loops.create_task(self._watch_loop_lag(), name="loop-lag")
            loops.create_task(self._reload_certificate_forever(), name="certificate")

    async def run_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; raises if one of the loops failed before."""
        assert self._loops is not None, "start() first"
        stopped = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({stopped, self._loops}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
        if self._loops.done():
            self._loops.result()  # a loop's error, as the reason the central exits
            raise RuntimeError("the central's loops ended before stop")

    async def _start_http(self) -> None:
        deps = HttpDeps(
            registry=self.registry,
            db=self.db,
            operator=self.operator,
            enrollment=self.enrollment,
            hub=self.hub,
            metrics=self.metrics,
            access=self.access,
            refusals=self.refusals,
            readiness=self.readiness,
            open_sessions=lambda: self.registry.sessions,
            history=self.history,
        )
        self._runner = web.AppRunner(
            build_app(deps),
            access_log=None,
            shutdown_timeout=2.0,
            # also bounds a client that opens a connection and sends its headers slowly
            keepalive_timeout=self.settings.http_idle_timeout,
        )
        await self._runner.setup()
        host, port = parse_hostport(self.settings.http, what="--http")
        site = web.TCPSite(self._runner, host, port, backlog=1024)
        await site.start()
        bound = self._runner.addresses  # the port, when asked for port 0
        self.http_port = int(bound[0][1]) if bound else port
        log.info("http open %s", kv(url=f"http://{host}:{self.http_port}/"))

    def _kept(self, name: str) -> str:
        path = Path(self.settings.db).resolve().parent / f"{Path(self.settings.db).name}.{name}"
        token, made = kept_token(path)
        if made:
            self._made_tokens.append((name.replace("-", " "), path))
        return token

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.settings.tls_cert:
            return None
        self._certificate = ServerCertificate(self.settings.tls_cert, self.settings.tls_key)
        return self._certificate.context

    async def _reload_certificate_forever(self) -> None:
        """A renewed certificate (cert-manager) serves new links without a restart."""
        while not await self._stopped_within(_CERTIFICATE_CHECK_INTERVAL):
            if self._certificate is not None:
                self._certificate.reload_if_changed()

    @property
    def monitor_port(self) -> int:
        return self.monitors.port

    def readiness(self) -> Readiness:
        return Readiness(
            database=self.db.ping(), broker=self.kafka.broker_ok, listener=self.monitors.serving
        )

    async def _stopped_within(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for stop; True once it is set."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        return self._stop.is_set()

    async def _consume(self) -> None:
        """Topics, then the consumer until stop (it commits the batch in hand). Stopped
        while still waiting for the broker, it is cancelled: there is nothing to commit."""
        run = asyncio.ensure_future(self.kafka.run(self._stop, self._topics_ready))
        try:
            await self._first_of(run)
            if run.done() or self.kafka.consuming:
                await run
        finally:
            run.cancel()

    async def _watch_loop_lag(self) -> None:
        lag = asyncio.ensure_future(watch_loop_lag(self.metrics.event_loop_lag.observe))
        try:
            await self._first_of(lag)
        finally:
            lag.cancel()

    async def _first_of(self, task: asyncio.Future[None]) -> None:
        """Wait until ``task`` is done or stop is set, whichever comes first."""
        stopped = asyncio.ensure_future(self._stop.wait())
        either: set[asyncio.Future[Any]] = {task, stopped}
        try:
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()

    async def _flush_forever(self) -> None:
        while not await self._stopped_within(_FLUSH_INTERVAL):
            try:
                self.flush(
                    last_seen=time.monotonic() - self._last_seen_flushed >= _LAST_SEEN_INTERVAL
                )
                if time.monotonic() - self._pruned_at >= _PRUNE_INTERVAL:
                    self.prune()
            except sqlite3.Error as exc:  # locked or full: the next round tries again
                log.warning("database write failed %s", kv(error=exc))

    def prune(self) -> int:
        """Forget answered request ids after a day, ended sessions and idle drivers
        after --retention-days."""
        self._pruned_at = time.monotonic()
        now = time.time()
        days = self.settings.retention_days
        deleted = self.db.prune(
            requests_before=now - _REQUEST_ID_RETENTION,
            sessions_before=now - days * 86400 if days > 0 else None,
        )
        if deleted:
            log.info("database pruned %s", kv(rows=deleted, size_bytes=self.db.size_bytes()))
        return deleted

    def flush(self, *, last_seen: bool = True) -> None:
        """Telemetry progress (and, when asked, heartbeat times) kept in memory, written in
        one transaction each."""
        self.sessions.flush()
        self.outbox.forget_confirmed()
        if last_seen:
            self._last_seen_flushed = time.monotonic()
        seen = self.monitors.take_seen() if last_seen else set()
        if seen:
            cps = (self.registry.cps.get(cp_id) for cp_id in seen)
            self.db.flush_last_seen(
                (cp.cp_id, cp.last_seen) for cp in cps if cp is not None and cp.last_seen
            )

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.to_thread(self.kafka.probe)
            if self.kafka.topics_recreated:  # the broker lost them: every CP state again
                self.kafka.topics_recreated = False
                self._topics_ready()
            if await self._stopped_within(_PROBE_INTERVAL):
                return

    async def stop(self) -> None:
        self._stop.set()
        if self._loops is not None:
            # the consumer commits the batch in hand; the probe ends its round trip
            await asyncio.wait({self._loops}, timeout=_LOOPS_GRACE)
            if not self._loops.done():
                log.warning("stopping: loops still busy after %.0fs, cancelled", _LOOPS_GRACE)
                self._loops.cancel()
                await asyncio.wait({self._loops})
            if not self._loops.cancelled() and self._loops.exception() is not None:
                log.error("stopping: a loop had failed %s", kv(error=self._loops.exception()))
        log.debug("stopping: consumer stopped")
        await self.monitors.close()
        log.debug("stopping: monitor links closed")
        await self.hub.close()
        if self._runner is not None:
            await self._runner.cleanup()
        log.debug("stopping: http closed")
        self.sessions.close()
        self.flush()
        await self.kafka.close(timeout=5.0)
        log.debug("stopping: kafka closed")
        try:
            self.outbox.forget_confirmed()  # what is left is sent again at the next start
        except sqlite3.Error as exc:
            log.warning("database write failed %s", kv(error=exc))
        self.db.close()
        log.info("central stopped")


async def serve(settings: CentralSettings, stop: asyncio.Event) -> None:
    central = Central(settings)
    await central.start()
    try:
        await central.run_until(stop)
    finally:
        await central.stop()
