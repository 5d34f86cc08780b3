"""The TCP server monitors connect to (framed, optionally TLS).

A connection first authenticates (Authenticate -> Challenge -> ChallengeResponse
or Register -> AuthResult) within the handshake timeout, in a task of its own;
then the task ends and the monitor's ``Status`` reports are handled as they are
decoded (:meth:`FramedConnection.deliver_to`): a heartbeat costs one callback,
not a task wake-up, which is what lets one event loop hold 10,000 CPs.
The accepted ``AuthResult`` tells the monitor ``status_interval``: it reports a
change at once and otherwise one heartbeat per interval. Silence for
``idle_timeout`` (missed × interval) closes the link (the CP becomes
DISCONNECTED); a dropped connection does so at once.
Bad input is answered with an ``ErrorReply`` (at most one in flight per
link), counted against the link's error budget, and never ends more than its
own connection. Connections not yet authenticated are capped, in all and per
peer address: beyond a cap a connection is closed before anything is read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
import time
from collections import Counter
from dataclasses import dataclass
from functools import partial

from evproto.auth import new_nonce
from evproto.connection import ErrorBudget, FramedConnection, Received
from evproto.errors import EvError, LinkTimeout, MessageError
from evproto.logs import kv
from evproto.messages import (
    CHANNELS,
    Authenticate,
    AuthResult,
    Challenge,
    ChallengeResponse,
    ErrorReply,
    PriceUpdate,
    Register,
    Status,
)
from evproto.routing import CallbackRouter
from evproto.schema import Message, MsgType
from evproto.states import Health
from evproto.vocabulary import Channel, LinkErrorKind

from evcentral.core import Core
from evcentral.credentials import Authenticator
from evcentral.journal import LogKind
from evcentral.monitor_link import MonitorLink
from evcentral.registry import ChargingPoint
from evcentral.sessions import Causes, SessionManager

__all__ = ["MonitorLimits", "MonitorServer"]

log = logging.getLogger("evcentral.monitors")

_ACK_TIMEOUT = 5.0
_BACKLOG = 4096


@dataclass(frozen=True, slots=True)
class MonitorLimits:
    """What one peer may hold (docs/reliability.md); the defaults fit 10,000 CPs."""

    max_pending: int = 4096
    max_pending_per_address: int = 1024
    error_budget: ErrorBudget = ErrorBudget()  # noqa: RUF009 (frozen: shared safely)


class MonitorServer:
    def __init__(
        self,
        core: Core,
        authenticator: Authenticator,
        sessions: SessionManager,
        *,
        status_interval: float,
        idle_timeout: float,
        handshake_timeout: float,
        limits: MonitorLimits = MonitorLimits(),
    ) -> None:
        self._registry = core.registry
        self._journal = core.journal
        self._metrics = core.metrics
        self._auth = authenticator
        self._sessions = sessions
        self._observer = core.metrics.link_counter()
        self._status_interval = status_interval
        self._idle_timeout = idle_timeout
        self._handshake_timeout = handshake_timeout
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()  # links the operator dropped
        self._limits = limits
        self._pending: set[FramedConnection] = set()  # not yet authenticated
        self._pending_per_address: Counter[str] = Counter()
        self._stopping = False
        self._seen: set[str] = set()  # CPs whose last_seen changed since the last flush
        # an authenticated link's messages, handled as they are decoded
        self._router = CallbackRouter()
        self._router.on(MsgType.STATUS)(self._on_status)
        for kind in (MsgType.AUTHENTICATE, MsgType.CHALLENGE_RESPONSE, MsgType.REGISTER):
            self._router.on(kind)(self._on_late_auth)
        self._router.on(MsgType.ERROR)(self._on_error_reply)

    # --- lifecycle ----------------------------------------------------------------

    def take_seen(self) -> set[str]:
        """The CPs whose ``last_seen`` changed since the last call."""
        seen, self._seen = self._seen, set()
        return seen

    async def start(self, host: str, port: int, ssl_context: ssl.SSLContext | None) -> None:
        self._server = await FramedConnection.serve(
            self._on_link,
            host,
            port,
            accept=CHANNELS[Channel.CENTRAL_FROM_MONITOR],
            timeout=_ACK_TIMEOUT,
            handshake_timeout=self._handshake_timeout,
            idle_timeout=self._idle_timeout,
            observer=self._observer,
            ssl_context=ssl_context,
            backlog=_BACKLOG,
            admit=self._admit,
            error_budget=self._limits.error_budget,
        )
        log.info("monitor port open %s", kv(address=f"{host}:{self.port}", tls=bool(ssl_context)))

    @property
    def port(self) -> int:
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def close(self) -> None:
        """Stop accepting, close every link; CPs are not faulted for the central's own stop."""
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for task in self._handlers:  # links still authenticating
            task.cancel()
        closing = [
            cp.link.conn.close("central shutting down")
            for cp in self._registry
            if isinstance(cp.link, MonitorLink)
        ]
        await asyncio.gather(*closing, *self._handlers, *self._closing, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    # --- admission -----------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Connections not yet authenticated."""
        return len(self._pending)

    def _admit(self, conn: FramedConnection) -> bool:
        """A new connection counts as pending until it authenticates or closes."""
        limits = self._limits
        if len(self._pending) >= limits.max_pending:
            reason = "pending_monitors"
        elif self._pending_per_address[conn.peer_host] >= limits.max_pending_per_address:
            reason = "pending_per_address"
        else:
            self._pending.add(conn)
            self._pending_per_address[conn.peer_host] += 1
            conn.on_close(partial(self._settled, conn))
            return True
        self._metrics.capped.labels(reason).inc()
        log.debug("monitor connection refused %s", kv(peer=conn.peer, reason=reason))
        return False

    def _settled(self, conn: FramedConnection) -> None:
        """Authenticated or gone: no longer pending."""
        if conn not in self._pending:
            return
        self._pending.discard(conn)
        host = conn.peer_host
        self._pending_per_address[host] -= 1
        if self._pending_per_address[host] <= 0:
            del self._pending_per_address[host]

    # --- one connection ------------------------------------------------------------

    async def _on_link(self, conn: FramedConnection) -> None:
        """Authenticate a new link, then hand its messages to the handlers as they come."""
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        link: MonitorLink | None = None
        try:
            async with asyncio.timeout(self._handshake_timeout):
                link = await self._authenticate(conn)
        except (TimeoutError, LinkTimeout):
            self._metrics.protocol_error(LinkErrorKind.HANDSHAKE_TIMEOUT)
            log.info("monitor did not authenticate in time %s", kv(peer=conn.peer))
        except EvError as exc:
            log.info("monitor connection ended %s", kv(peer=conn.peer, error=str(exc)))
        finally:
            self._handlers.discard(task)
            self._settled(conn)
        if link is None:
            await conn.close("closed by the central")
            return
        conn.on_close(partial(self._lost, link))
        conn.deliver_to(partial(self._on_message, link))

    async def _authenticate(self, conn: FramedConnection) -> MonitorLink | None:
        hello = await self._recv(conn)
        if not isinstance(hello, Authenticate):
            await self._refuse(conn, hello)
            return None
        cp_id = hello.cp_id
        nonce = new_nonce()
        await conn.send(Challenge(nonce=nonce, registered=self._auth.is_registered(cp_id)))
        answer = await self._recv(conn)
        result: AuthResult
        if isinstance(answer, ChallengeResponse):
            result = self._auth.verify(cp_id, nonce, answer)
        elif isinstance(answer, Register):
            result = self._auth.register(cp_id, nonce, answer, conn.peer_host)
        else:
            await self._refuse(conn, answer)
            return None
        if result.accepted:
            result = dataclasses.replace(result, status_interval=self._status_interval)
        else:
            self._metrics.protocol_error(LinkErrorKind.AUTH_FAILED)
        await conn.send(result)
        if not result.accepted:
            if not isinstance(answer, Register):  # registrations: counted by register()
                # journaled at most once per peer every few seconds: a flood of bad logins
                # must not push the operator's events out of the dashboard's log
                self._auth.login_refused(cp_id, conn.peer_host, result.reason)
            await conn.close(result.reason)
            return None
        cp = self._registry.get(cp_id)
        assert cp is not None  # verify/register accepted it
        link = MonitorLink(cp_id, conn)
        cp.last_seen = time.time()
        self._seen.add(cp_id)
        self._registry.attach_link(cp, link, Health.OK)
        self._journal.record(
            LogKind.CONNECTION,
            f"{cp_id} connected"
            + (f" (registered from {conn.peer_host})" if isinstance(answer, Register) else ""),
            cp_id=cp_id,
        )
        return link

    async def _recv(self, conn: FramedConnection) -> Message:
        """The next message; bad frames get an ErrorReply and the wait goes on."""
        while True:
            try:
                return await conn.recv(timeout=self._handshake_timeout)
            except MessageError as exc:  # counted against the link's budget
                await conn.send(ErrorReply(code=exc.code, message=exc.message[:512]))

    async def _refuse(self, conn: FramedConnection, msg: Message) -> None:
        conn.refused(LinkErrorKind.NOT_AUTHENTICATED)
        log.info("message before authentication %s", kv(peer=conn.peer, type=msg.TYPE.value))
        await conn.send(
            ErrorReply(
                code=LinkErrorKind.NOT_AUTHENTICATED.value,
                message=f"{msg.TYPE.value} before authentication: send authenticate, "
                "then answer the challenge",
            )
        )
        await conn.close("not authenticated")

    def _on_message(self, link: MonitorLink, received: Received) -> None:
        if isinstance(received, MessageError):  # counted by the link's observer
            self._answer_error(link, received)
            return
        try:
            self._router.dispatch(received, link)
        except MessageError as exc:  # a type this server has no handler for
            link.conn.refused(LinkErrorKind.of(exc.code))
            self._answer_error(link, exc)

    @staticmethod
    def _answer_error(link: MonitorLink, exc: MessageError) -> None:
        link.reply_error(ErrorReply(code=exc.code, message=exc.message[:512]))

    def _lost(self, link: MonitorLink) -> None:
        cp = self._registry.get(link.cp_id)
        if cp is None or not self._registry.detach_link(cp, link):
            return  # replaced by a newer link: nothing changed for the CP
        reason = link.conn.close_reason or "closed"
        self._journal.record(
            LogKind.CONNECTION,
            f"{cp.cp_id} disconnected: {reason}",
            cp_id=cp.cp_id,
            level=logging.WARNING,
        )
        if not self._stopping:
            self._sessions.link_lost(cp)

    # --- messages on an authenticated link ----------------------------------------

    def _on_status(self, msg: Status, link: MonitorLink) -> None:
        if msg.cp_id != link.cp_id:
            link.conn.refused(LinkErrorKind.UNEXPECTED_MESSAGE)
            link.reply_error(
                ErrorReply(
                    code=LinkErrorKind.WRONG_CP.value,
                    message=f"this link is {link.cp_id}'s, not {msg.cp_id}",
                )
            )
            return
        cp = self._registry.cps[link.cp_id]
        cp.last_seen = time.time()
        self._seen.add(cp.cp_id)
        if msg.health is not cp.health:
            self._health_changed(cp, msg)

    def _health_changed(self, cp: ChargingPoint, msg: Status) -> None:
        cp.health = msg.health
        self._registry.refresh(cp)
        if msg.health is Health.OK:
            self._journal.record(LogKind.FAULT, f"{cp.cp_id} is healthy again", cp_id=cp.cp_id)
            return
        why = f": {msg.reason}" if msg.reason else ""
        self._journal.record(
            LogKind.FAULT,
            f"{cp.cp_id} reports {msg.health.value}{why}",
            cp_id=cp.cp_id,
            level=logging.WARNING,
        )
        cause = Causes.FAULT if msg.health is Health.KO else Causes.ENGINE_UNREACHABLE
        self._sessions.cp_fault(cp, cause)

    def _on_late_auth(self, msg: Message, link: MonitorLink) -> None:
        link.conn.refused(LinkErrorKind.UNEXPECTED_MESSAGE)
        link.reply_error(
            ErrorReply(
                code=LinkErrorKind.UNEXPECTED_MESSAGE.value,
                message=f"{msg.TYPE.value}: this link is already authenticated as {link.cp_id}",
            )
        )

    def _on_error_reply(self, msg: ErrorReply, link: MonitorLink) -> None:
        log.warning(
            "monitor reported an error %s", kv(cp=link.cp_id, code=msg.code, error=msg.message)
        )

    # --- pushes ------------------------------------------------------------------------

    def disconnect(self, cp: ChargingPoint, reason: str) -> None:
        """Close the CP's link (if any); the CP becomes DISCONNECTED when it is gone."""
        if isinstance(cp.link, MonitorLink):
            task = asyncio.create_task(cp.link.conn.close(reason), name=f"close-{cp.cp_id}")
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    def push_price(self, cp: ChargingPoint) -> None:
        if isinstance(cp.link, MonitorLink):
            cp.link.push(PriceUpdate(cp_id=cp.cp_id, price=cp.price))
