"""The TCP port the CP's monitor connects to (framed protocol, evproto.connection).

InfoRequest -> EngineInfo, HealthRequest -> HealthAnswer; PriceUpdate,
CentralUnreachable and CentralRestored are notices (the frame ACK is the only
reply). One monitor at a time: a new link replaces the old one. A frame that is
not an acceptable message gets an ErrorReply and the link keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from evproto.connection import FramedConnection
from evproto.errors import EvError, LinkClosed, LinkError, LinkTimeout, ProtocolError
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
from evproto.routing import Router
from evproto.schema import Message, MsgType
from evproto.vocabulary import Channel, LinkErrorKind

from evengine.metrics import EngineMetrics

__all__ = ["EngineSide", "MonitorLink"]

log = logging.getLogger("evengine.monitor_link")

HANDSHAKE_TIMEOUT = 5.0  # seconds for ENQ after connect, and for each ACK
IDLE_TIMEOUT = 60.0  # a monitor checks health every second; this long silent is gone


class EngineSide(Protocol):
    """What the link asks of the engine."""

    def engine_info(self) -> EngineInfo: ...
    def health_answer(self, seq: int) -> HealthAnswer: ...
    def price_update(self, price: float) -> None: ...
    def central_reachable(self, reachable: bool) -> None: ...
    def record_key(self, key_hex: str) -> None: ...


class MonitorLink:
    def __init__(self, engine: EngineSide, metrics: EngineMetrics, cp_id: str) -> None:
        self._engine = engine
        self._metrics = metrics
        self._cp_id = cp_id
        self._server: asyncio.Server | None = None
        self._link: FramedConnection | None = None
        self._router = Router()
        self._router.on(MsgType.INFO_REQUEST)(self._on_info)
        self._router.on(MsgType.HEALTH_REQUEST)(self._on_health)
        self._router.on(MsgType.PRICE_UPDATE)(self._on_price)
        self._router.on(MsgType.RECORD_KEY)(self._on_record_key)
        self._router.on(MsgType.CENTRAL_UNREACHABLE)(self._on_central_unreachable)
        self._router.on(MsgType.CENTRAL_RESTORED)(self._on_central_restored)
        self._router.on(MsgType.ERROR)(self._on_error_reply)

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.closed

    @property
    def port(self) -> int:
        """The bound port (useful when listening on port 0)."""
        assert self._server is not None and self._server.sockets
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self, host: str, port: int) -> None:
        try:
            self._server = await FramedConnection.serve(
                self._on_link,
                host,
                port,
                accept=CHANNELS[Channel.ENGINE_FROM_MONITOR],
                timeout=HANDSHAKE_TIMEOUT,
                idle_timeout=IDLE_TIMEOUT,
                observer=self._metrics.link_counter(),
            )
        except OSError as exc:
            raise EvError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        if self._link is not None:
            await self._link.close("engine shutting down")
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)

    # --- one connection ------------------------------------------------------------

    async def _on_link(self, link: FramedConnection) -> None:
        """A monitor opened a link (evproto counted and dropped failed handshakes)."""
        previous, self._link = self._link, link
        if previous is not None:
            await previous.close("replaced by a new monitor connection")
        log.info("monitor connected %s", kv(cp=self._cp_id, peer=link.peer))
        try:
            await self._serve(link)
        finally:
            if self._link is link:
                self._link = None
            await link.abort()
            log.info(
                "monitor disconnected %s",
                kv(cp=self._cp_id, peer=link.peer, reason=link.close_reason),
            )

    async def _serve(self, link: FramedConnection) -> None:
        while True:
            try:
                msg = await link.recv()
            except LinkTimeout:
                continue  # quiet for a while; the link's idle timeout ends a dead one
            except LinkClosed:
                return
            except ProtocolError as exc:  # counted by the link (observer)
                log.warning(
                    "bad frame from the monitor %s",
                    kv(cp=self._cp_id, code=exc.code, error=exc.message),
                )
                reply: Message | None = ErrorReply(code=exc.code, message=exc.message[:512])
            else:
                reply = await self._router.dispatch(msg)
            if reply is not None:
                try:
                    await link.send(reply)
                except LinkError:
                    return

    # --- handlers, one per message type --------------------------------------------------

    async def _on_info(self, _msg: InfoRequest) -> Message:
        return self._engine.engine_info()

    async def _on_health(self, msg: HealthRequest) -> Message:
        return self._engine.health_answer(msg.seq)

    async def _on_price(self, msg: PriceUpdate) -> Message | None:
        if msg.cp_id != self._cp_id:
            return self._wrong_cp(msg.cp_id)
        self._engine.price_update(msg.price)
        return None

    async def _on_record_key(self, msg: RecordKey) -> Message | None:
        if msg.cp_id != self._cp_id:
            return self._wrong_cp(msg.cp_id)
        try:
            self._engine.record_key(msg.key)
        except ValueError as exc:
            self._metrics.protocol_error(LinkErrorKind.INVALID_FIELD)
            return ErrorReply(code="bad_record_key", message=f"not a record key: {exc}")
        return None

    async def _on_central_unreachable(self, msg: CentralUnreachable) -> Message | None:
        if msg.cp_id != self._cp_id:
            return self._wrong_cp(msg.cp_id)
        self._engine.central_reachable(False)
        return None

    async def _on_central_restored(self, msg: CentralRestored) -> Message | None:
        if msg.cp_id != self._cp_id:
            return self._wrong_cp(msg.cp_id)
        self._engine.central_reachable(True)
        return None

    async def _on_error_reply(self, msg: ErrorReply) -> None:
        log.warning("the monitor refused a frame %s", kv(cp=self._cp_id, code=msg.code))

    def _wrong_cp(self, cp_id: str) -> ErrorReply:
        self._metrics.protocol_error(LinkErrorKind.WRONG_CP)
        text = f"this engine is {self._cp_id}, not {cp_id}"
        log.warning("notice for another CP %s", kv(cp=self._cp_id, other=cp_id))
        return ErrorReply(code=LinkErrorKind.WRONG_CP.value, message=text)
