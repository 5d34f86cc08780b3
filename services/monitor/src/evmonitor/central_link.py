"""The link to the central: log in, then report the engine's health.

One task: connect (TLS when asked) and authenticate with tenacity back-off
capped by ``--retry-cap``; then send ``Status`` at once on every change of the
health report and, as the heartbeat, every ``status_interval`` the central
asked for in its ``AuthResult`` (``--health-interval`` when it names none;
the engine is still checked every ``--health-interval``), while reading
the central's pushes (``PriceUpdate`` goes on to the engine). When the central
is gone the engine is told, and told again when it is back.
"""

from __future__ import annotations

import logging

from evproto.connection import FramedConnection
from evproto.errors import (
    InvalidField,
    LinkError,
    LinkTimeout,
    ProtocolError,
    UnknownMessageType,
)
from evproto.logs import kv
from evproto.messages import CHANNELS, AuthResult, ErrorReply, PriceUpdate, Status
from evproto.routing import Router
from evproto.schema import MsgType
from evproto.vocabulary import Channel, LinkErrorKind

from evmonitor.authentication import Authenticator, SecretRejected
from evmonitor.engine_link import EngineLink
from evmonitor.health import HealthBoard
from evmonitor.inbound import Inbound
from evmonitor.metrics import MonitorMetrics
from evmonitor.peers import Peer
from evmonitor.reconnect import Reconnector
from evmonitor.settings import MonitorSettings
from evmonitor.tasks import first_to_finish

__all__ = ["CentralLink"]

log = logging.getLogger("evmonitor.central")

CENTRAL_RETRY_INITIAL = 0.5


class CentralLink:
    def __init__(
        self,
        settings: MonitorSettings,
        health: HealthBoard,
        engine: EngineLink,
        authenticator: Authenticator,
        metrics: MonitorMetrics,
    ) -> None:
        self._settings = settings
        self._cp_id = settings.cp_id
        self._health = health
        self._engine = engine
        self._auth = authenticator
        self._metrics = metrics
        self._ssl = settings.central_ssl_context()
        self._reconnector = Reconnector(
            Peer.CENTRAL,
            cp_id=settings.cp_id,
            initial=min(CENTRAL_RETRY_INITIAL, settings.retry_cap),
            cap=settings.retry_cap,
            metrics=metrics,
        )
        self._inbound = Inbound(Peer.CENTRAL, settings.cp_id, metrics)
        self._reachable: bool | None = None
        self._router = Router()
        self._router.on(MsgType.PRICE_UPDATE)(self._on_price_update)
        self._router.on(MsgType.ERROR)(self._on_error_reply)

    async def run(self) -> None:
        await self._health.first_report()  # the first Status says something true
        while True:
            conn, result = await self._reconnector.open(self._connect, self._on_unreachable)
            try:
                await self._session(conn, result)
            except (LinkError, ProtocolError) as exc:
                self._on_unreachable(exc)
            finally:
                await conn.close("monitor stopping")
                self._metrics.central_connected.set(0)

    # --- connecting ---------------------------------------------------------------------

    async def _connect(self) -> tuple[FramedConnection, AuthResult]:
        try:
            return await self._login_once()
        except SecretRejected as exc:
            log.warning("secret rejected %s", kv(cp=self._cp_id, peer="central", reason=exc))
            return await self._login_once()

    async def _login_once(self) -> tuple[FramedConnection, AuthResult]:
        await self._auth.before_connecting()
        host, port = self._settings.central_address
        conn = await FramedConnection.connect(
            host,
            port,
            accept=CHANNELS[Channel.MONITOR_FROM_CENTRAL],
            timeout=self._settings.central_timeout,
            ssl_context=self._ssl,
            server_hostname=self._settings.central_server_name or None,
            observer=self._metrics.observer(Peer.CENTRAL, self._cp_id),
        )
        try:
            result = await self._auth.login(conn)
        except BaseException:
            await conn.close("login failed")
            raise
        return conn, result

    def _on_unreachable(self, exc: BaseException) -> None:
        self._metrics.central_connected.set(0)
        if self._reachable is not False:
            self._reachable = False
            log.warning("central unreachable %s", kv(cp=self._cp_id, peer="central", reason=exc))
            self._engine.set_central_reachable(False)

    # --- the authenticated link -------------------------------------------------------

    async def _session(self, conn: FramedConnection, result: AuthResult) -> None:
        self._reachable = True
        self._metrics.central_connected.set(1)
        log.info(
            "central link up %s",
            kv(cp=self._cp_id, peer="central", address=conn.peer, price=result.price,
               status_interval=result.status_interval, tls=self._ssl is not None),
        )  # fmt: skip
        if result.price is not None:
            self._engine.forward_price(result.price)
        self._engine.set_central_reachable(True)
        interval = result.status_interval or self._settings.health_interval
        await first_to_finish(self._report_forever(conn, interval), self._read_pushes(conn))

    async def _report_forever(self, conn: FramedConnection, interval: float) -> None:
        """Status now, then on every change and at least every interval (the heartbeat)."""
        while True:
            seen = self._health.version
            report = self._health.current
            assert report is not None
            await conn.send(Status(cp_id=self._cp_id, health=report.health, reason=report.reason))
            self._metrics.reports.labels(health=report.health.value).inc()
            await self._health.wait_for_change(seen, interval)

    async def _read_pushes(self, conn: FramedConnection) -> None:
        while True:
            try:
                msg = await self._inbound.receive(conn, self._settings.central_timeout)
            except LinkTimeout:
                continue  # the central need not say anything
            if msg.TYPE in self._router.kinds:
                await self._router.dispatch(msg, conn)
            else:
                error = UnknownMessageType(f"{msg.TYPE.value} is not expected after login")
                await self._inbound.refuse(conn, error, count_as=LinkErrorKind.UNEXPECTED_MESSAGE)

    async def _on_price_update(self, msg: PriceUpdate, conn: FramedConnection) -> None:
        if msg.cp_id != self._cp_id:
            error = InvalidField(msg.TYPE.value, "cp_id", f"{msg.cp_id} is not {self._cp_id}")
            await self._inbound.refuse(conn, error, count_as=LinkErrorKind.INVALID_FIELD)
            return
        log.info("price update %s", kv(cp=self._cp_id, peer="central", price=msg.price))
        self._engine.forward_price(msg.price)

    async def _on_error_reply(self, msg: ErrorReply, _conn: FramedConnection) -> None:
        self._inbound.peer_refused(msg)
