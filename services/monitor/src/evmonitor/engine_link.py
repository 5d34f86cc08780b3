"""The link to the engine: its identity, a health check every interval, and notices.

One task: connect (back-off capped low, so a restarted engine is seen at
once), ask ``InfoRequest`` -> ``EngineInfo``, then every ``--health-interval``
``HealthRequest(seq)`` -> ``HealthAnswer(seq)``. An answer for an older seq is
stale and skipped. Each check ends in a :class:`Report` on the health board:
the engine's OK/KO, or UNREACHABLE when it did not answer within
``--health-timeout`` or the link is gone. Beside it, the notices the engine
must hear (price, central unreachable/restored) are kept in sync.
"""

from __future__ import annotations

import asyncio
import logging

from evproto.connection import FramedConnection
from evproto.errors import (
    ConfigError,
    LinkClosed,
    LinkError,
    LinkTimeout,
    ProtocolError,
)
from evproto.logs import kv
from evproto.messages import (
    CHANNELS,
    CentralRestored,
    CentralUnreachable,
    EngineInfo,
    ErrorReply,
    HealthAnswer,
    HealthRequest,
    InfoRequest,
    PriceUpdate,
    RecordKey,
)
from evproto.schema import Message
from evproto.states import Health
from evproto.vocabulary import Channel

from evmonitor.health import HealthBoard, Report
from evmonitor.inbound import Inbound
from evmonitor.metrics import MonitorMetrics
from evmonitor.peers import Peer
from evmonitor.reconnect import Reconnector
from evmonitor.settings import MonitorSettings
from evmonitor.tasks import first_to_finish

__all__ = ["EngineLink"]

log = logging.getLogger("evmonitor.engine")

ENGINE_RETRY_INITIAL = 0.2
ENGINE_RETRY_CAP = 2.0  # the engine is beside us: a restart must be seen within seconds
SILENT_CHECKS_BEFORE_RECONNECT = 3  # a link that stays silent may be half-open: start over


class EngineLink:
    def __init__(
        self, settings: MonitorSettings, health: HealthBoard, metrics: MonitorMetrics
    ) -> None:
        self._settings = settings
        self._cp_id = settings.cp_id
        self._health = health
        self._metrics = metrics
        self._reconnector = Reconnector(
            Peer.ENGINE,
            cp_id=settings.cp_id,
            initial=ENGINE_RETRY_INITIAL,
            cap=min(ENGINE_RETRY_CAP, settings.retry_cap),
            metrics=metrics,
        )
        self._inbound = Inbound(Peer.ENGINE, settings.cp_id, metrics)
        self.info: EngineInfo | None = None
        self._info_ready = asyncio.Event()
        self._seq = 0
        # What the engine must know, and what it was last told (notices).
        self._price: float | None = None
        self._record_key: str | None = None
        self._central_down = False
        self._engine_told_down = False
        self._notices_changed = asyncio.Event()

    # --- what the central side tells the engine ------------------------------------

    def forward_price(self, price: float) -> None:
        self._price = price
        self._notices_changed.set()

    def forward_record_key(self, key_hex: str) -> None:
        """The CP's record key (from its secret): the engine proves its reports with it."""
        self._record_key = key_hex
        self._notices_changed.set()

    def set_central_reachable(self, reachable: bool) -> None:
        self._central_down = not reachable
        self._notices_changed.set()

    async def engine_info(self) -> EngineInfo:
        """The engine's identity (location, proposed price), once it has answered."""
        await self._info_ready.wait()
        assert self.info is not None
        return self.info

    # --- the task ---------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            conn = await self._reconnector.open(self._open, self._on_connect_failure)
            try:
                await self._session(conn)
            except (LinkError, ProtocolError) as exc:
                self._lost(f"engine link lost: {exc.message}")
            finally:
                await conn.close("monitor stopping")
                self._metrics.engine_connected.set(0)

    def _on_connect_failure(self, exc: BaseException) -> None:
        self._metrics.engine_connected.set(0)
        self._health.mark_unreachable(f"cannot reach the engine: {exc}")

    def _lost(self, reason: str) -> None:
        log.warning("engine link down %s", kv(cp=self._cp_id, peer="engine", reason=reason))
        self._health.mark_unreachable(reason)

    async def _open(self) -> FramedConnection:
        host, port = self._settings.engine_address
        conn = await FramedConnection.connect(
            host,
            port,
            accept=CHANNELS[Channel.MONITOR_FROM_ENGINE],
            timeout=self._settings.health_timeout,
            observer=self._metrics.observer(Peer.ENGINE, self._cp_id),
        )
        try:
            info = await self._ask_info(conn)
        except BaseException:
            await conn.abort()
            raise
        if info.cp_id != self._cp_id:
            await conn.close("wrong charging point")
            raise ConfigError(
                f"the engine at {self._settings.engine} is {info.cp_id}, but this monitor is "
                f"--cp-id {self._cp_id}: fix --engine or --cp-id"
            )
        self.info = info
        self._info_ready.set()
        log.info(
            "engine link up %s",
            kv(cp=self._cp_id, peer="engine", address=conn.peer, location=info.location),
        )
        return conn

    async def _ask_info(self, conn: FramedConnection) -> EngineInfo:
        timeout = self._settings.health_timeout
        try:
            async with asyncio.timeout(timeout):
                await conn.send(InfoRequest())
                while True:
                    msg = await self._next_message(conn)
                    if isinstance(msg, EngineInfo):
                        return msg
                    self._inbound.unexpected(msg, "EngineInfo")
        except TimeoutError:
            raise LinkTimeout(f"the engine sent no EngineInfo within {timeout}s") from None

    async def _session(self, conn: FramedConnection) -> None:
        self._metrics.engine_connected.set(1)
        await first_to_finish(self._check_health_forever(conn), self._keep_informed(conn))

    # --- health checks ------------------------------------------------------------------

    async def _check_health_forever(self, conn: FramedConnection) -> None:
        loop = asyncio.get_running_loop()
        silent_checks = 0
        while True:
            next_check = loop.time() + self._settings.health_interval
            report = await self._check_once(conn)
            self._health.publish(report)
            silent_checks = silent_checks + 1 if report.health is Health.UNREACHABLE else 0
            if silent_checks >= SILENT_CHECKS_BEFORE_RECONNECT:
                raise LinkTimeout(f"no answer to {silent_checks} health checks in a row")
            await asyncio.sleep(max(0.0, next_check - loop.time()))

    async def _check_once(self, conn: FramedConnection) -> Report:
        """One health request; LinkClosed (and other link errors) go up to end the session."""
        self._seq += 1
        seq = self._seq
        timeout = self._settings.health_timeout
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            async with asyncio.timeout(timeout):
                await conn.send(HealthRequest(seq=seq))
                answer = await self._await_answer(conn, seq)
        except (TimeoutError, LinkTimeout):
            if conn.closed:
                raise LinkClosed(conn.close_reason) from None
            return Report(Health.UNREACHABLE, f"no answer from the engine within {timeout}s")
        self._metrics.health_check_latency.observe(loop.time() - started)
        if answer.health is Health.OK:
            return Report(Health.OK)
        return Report(answer.health, answer.reason or f"the engine reports {answer.health.value}")

    async def _await_answer(self, conn: FramedConnection, seq: int) -> HealthAnswer:
        while True:
            msg = await self._next_message(conn)
            if not isinstance(msg, HealthAnswer):
                self._inbound.unexpected(msg, "HealthAnswer")
            elif msg.seq == seq:
                return msg
            else:  # the answer to a check that already timed out
                log.debug("stale health answer %s", kv(cp=self._cp_id, seq=msg.seq, want=seq))

    async def _next_message(self, conn: FramedConnection) -> Message:
        """The next valid message from the engine; its ErrorReplies are noted and skipped."""
        while True:
            msg = await self._inbound.receive(conn, self._settings.health_timeout)
            if not isinstance(msg, ErrorReply):
                return msg
            self._inbound.peer_refused(msg)

    # --- notices --------------------------------------------------------------------------

    async def _keep_informed(self, conn: FramedConnection) -> None:
        """Send the engine whatever changed since it was last told; a new link starts afresh."""
        told_price: float | None = None
        told_key: str | None = None
        told_down_here = False
        while True:
            self._notices_changed.clear()
            if self._record_key is not None and self._record_key != told_key:
                await conn.send(RecordKey(cp_id=self._cp_id, key=self._record_key))
                told_key = self._record_key
                log.info("record key sent to the engine %s", kv(cp=self._cp_id))
            if self._price is not None and self._price != told_price:
                await conn.send(PriceUpdate(cp_id=self._cp_id, price=self._price))
                told_price = self._price
                log.info("price sent to the engine %s", kv(cp=self._cp_id, price=told_price))
            if self._central_down and not told_down_here:
                await self._notify(conn, CentralUnreachable(cp_id=self._cp_id))
                told_down_here = self._engine_told_down = True
            elif not self._central_down and self._engine_told_down:
                await self._notify(conn, CentralRestored(cp_id=self._cp_id))
                told_down_here = self._engine_told_down = False
            await self._notices_changed.wait()

    async def _notify(self, conn: FramedConnection, notice: Message) -> None:
        await conn.send(notice)
        log.info("engine told %s", kv(cp=self._cp_id, peer="engine", notice=notice.TYPE.value))
