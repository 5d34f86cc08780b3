"""Transport: an asyncio framed connection (handshake, ACK/NACK, resend, EOT).

A :class:`FramedConnection` is the link's ``asyncio.Protocol``: bytes are decoded
in ``data_received`` as they arrive, with no task per link. Data frames are
ACKed (or NACKed on a bad LRC) on the spot and decoded; ACK and NACK resolve
the one frame in flight from :meth:`FramedConnection.send`. Decoded messages
are queued for :meth:`FramedConnection.recv`, or, after
:meth:`FramedConnection.deliver_to`, handed to a callback right away (what a
server holding thousands of links uses: a heartbeat then costs one callback).

Every wait has a timeout and every read is bounded by the decoder's maximum
frame; a peer that floods frames faster than they are taken is throttled by
pausing the socket, so it fills its own TCP window, not our memory. A peer's
protocol errors are counted against an :class:`ErrorBudget`: once it is spent
the link is closed (a flood of bad frames costs a bounded amount of work).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, cast

from evproto.errors import (
    FrameTooLarge,
    LinkClosed,
    LinkError,
    LinkTimeout,
    MessageError,
    SendFailed,
)
from evproto.framing import DEFAULT_MAX_FRAME, Control, Frame, FrameDecoder, encode_frame
from evproto.logs import kv
from evproto.schema import Message, MsgType, decode_message, encode_message
from evproto.vocabulary import LinkErrorKind

__all__ = [
    "ErrorBudget",
    "FramedConnection",
    "LinkHandler",
    "LinkObserver",
    "NullObserver",
    "Received",
]

log = logging.getLogger("evproto.connection")

_WRITE_HIGH_WATER = 256 * 1024
_INBOX_HIGH_WATER = 256  # messages received but not yet taken by recv()
_ACK = Control.ACK.byte
_NACK = Control.NACK.byte
_EOT = Control.EOT.byte
_ENQ = Control.ENQ.byte

Received = Message | MessageError
"""What a link hands on: a valid message, or why a well-framed frame is not one."""

LinkHandler = Callable[["FramedConnection"], Awaitable[None]]
"""A server's coroutine for one link, started once the ENQ/ACK handshake is done."""


class LinkObserver(Protocol):
    """Hooks a service uses to count traffic and errors (metrics)."""

    def frame_in(self) -> None: ...
    def frame_out(self) -> None: ...
    def protocol_error(self, kind: LinkErrorKind) -> None: ...


class NullObserver:
    def frame_in(self) -> None:
        pass

    def frame_out(self) -> None:
        pass

    def protocol_error(self, kind: LinkErrorKind) -> None:
        pass


_NULL = NullObserver()


@dataclass(frozen=True, slots=True)
class ErrorBudget:
    """At most ``errors`` protocol errors in any ``window`` seconds; one more closes the link."""

    errors: int = 20
    window: float = 10.0


class FramedConnection(asyncio.Protocol):
    """One framed link; open it with :meth:`connect` or :meth:`serve`, not directly."""

    # one per CP at the central: past 30 attributes an instance __dict__ is no longer
    # shared-key and costs ~1.6 KB a link (docs/decisions.md, "Memory per CP")
    __slots__ = (
        "_accept",
        "_admit",
        "_budget",
        "_close_callbacks",
        "_closed",
        "_decoder",
        "_drain_waiter",
        "_errors",
        "_errors_since",
        "_expect",
        "_handler",
        "_idle_timer",
        "_inbox",
        "_inbox_full",
        "_last_read",
        "_link_task",
        "_loop",
        "_lost",
        "_observer",
        "_on_open",
        "_open_timer",
        "_opening",
        "_reply",
        "_send_lock",
        "_transport",
        "_waiters",
        "_write_paused",
        "close_reason",
        "idle_timeout",
        "max_resends",
        "peer",
        "peer_host",
        "timeout",
    )

    def __init__(
        self,
        *,
        accept: frozenset[MsgType],
        timeout: float = 5.0,
        idle_timeout: float | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_resends: int = 3,
        observer: LinkObserver = _NULL,
        expect: Control = Control.ENQ,
        on_open: LinkHandler | None = None,
        error_budget: ErrorBudget | None = None,
    ) -> None:
        self._accept = accept
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.max_resends = max_resends
        self._observer = observer
        self._decoder = FrameDecoder(max_frame)
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self.peer = "?"
        self.peer_host = "?"
        # the peer's protocol errors in the current window
        self._budget = error_budget
        self._errors = 0
        self._errors_since = 0.0
        # opening: the client waits for ACK to its ENQ, the server for the ENQ
        self._expect = expect
        self._opening: asyncio.Future[None] = self._loop.create_future()
        self._on_open = on_open
        self._admit: Callable[[FramedConnection], bool] | None = None
        self._open_timer: asyncio.TimerHandle | None = None
        self._link_task: asyncio.Task[None] | None = None
        # receiving
        self._inbox: deque[Received | FrameTooLarge] = deque()
        self._waiters: list[asyncio.Future[None]] = []
        self._handler: Callable[[Received], None] | None = None
        self._inbox_full = False
        self._write_paused = False
        self._drain_waiter: asyncio.Future[None] | None = None
        # sending: one frame in flight
        self._send_lock = asyncio.Lock()
        self._reply: asyncio.Future[Control] | None = None
        # idle detection: one timer per link, re-armed only when it fires
        self._last_read = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        # closing
        self._closed = False
        self._lost: asyncio.Future[None] = self._loop.create_future()
        self._close_callbacks: list[Callable[[], None]] = []
        self.close_reason = ""

    # --- opening ----------------------------------------------------------------

    @classmethod
    async def connect(
        cls,
        host: str,
        port: int,
        *,
        accept: frozenset[MsgType],
        timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        **kwargs: object,
    ) -> FramedConnection:
        """Open a client link: TCP (and TLS) connect, then ENQ -> ACK. With TLS the
        certificate must name ``server_hostname`` (default: ``host``)."""
        loop = asyncio.get_running_loop()

        def make() -> FramedConnection:
            return cls(accept=accept, timeout=timeout, expect=Control.ACK, **kwargs)  # type: ignore[arg-type]

        try:
            async with asyncio.timeout(timeout):
                _transport, conn = await loop.create_connection(
                    make,
                    host,
                    port,
                    ssl=ssl_context,
                    server_hostname=(server_hostname or host) if ssl_context else None,
                )
        except TimeoutError:
            raise LinkTimeout(f"connecting to {host}:{port} timed out after {timeout}s") from None
        except OSError as exc:
            raise LinkClosed(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        try:
            conn._write(_ENQ)
            async with asyncio.timeout(timeout):
                await asyncio.shield(conn._opening)
        except TimeoutError:
            await conn.abort()
            raise LinkTimeout(f"no ACK from {conn.peer} within {timeout}s") from None
        except BaseException:
            await conn.abort()
            raise
        return conn

    @classmethod
    async def serve(
        cls,
        on_link: LinkHandler,
        host: str,
        port: int,
        *,
        accept: frozenset[MsgType],
        timeout: float = 5.0,
        handshake_timeout: float | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 100,
        admit: Callable[[FramedConnection], bool] | None = None,
        **kwargs: object,
    ) -> asyncio.Server:
        """Listen; each client that opens with ENQ gets ACK and a task running ``on_link``.

        A client that sends no ENQ within ``handshake_timeout`` (default ``timeout``)
        is dropped and counted as ``handshake_timeout``; one that sends anything
        else is dropped and counted as ``handshake``. ``admit``, if given, sees each
        new connection first (its peer known): False drops it before anything is read.
        """
        loop = asyncio.get_running_loop()
        opening = timeout if handshake_timeout is None else handshake_timeout

        def make() -> FramedConnection:
            conn = cls(accept=accept, timeout=timeout, on_open=on_link, **kwargs)  # type: ignore[arg-type]
            conn._admit = admit
            conn._open_timer = loop.call_later(opening, conn._opening_timed_out, opening)
            return conn

        return await loop.create_server(
            make,
            host,
            port,
            ssl=ssl_context,
            backlog=backlog,
            ssl_handshake_timeout=opening if ssl_context else None,
        )

    def _opening_timed_out(self, after: float) -> None:
        if self._opening.done():
            return
        self._observer.protocol_error(LinkErrorKind.HANDSHAKE_TIMEOUT)
        log.info("link did not open %s", kv(peer=self.peer, error=f"no ENQ within {after}s"))
        self._shut(f"no ENQ within {after}s")

    def _opened(self) -> None:
        """The ENQ/ACK exchange is done: start the idle clock (and a server's link task)."""
        if self._open_timer is not None:
            self._open_timer.cancel()
        self._opening.set_result(None)
        if self.idle_timeout is not None:
            self._last_read = self._loop.time()
            self._idle_timer = self._loop.call_at(
                self._last_read + self.idle_timeout, self._check_idle
            )
        if self._on_open is not None:
            self._link_task = self._loop.create_task(
                self._run_link(self._on_open), name=f"link-{self.peer}"
            )

    async def _run_link(self, on_link: LinkHandler) -> None:
        try:
            await on_link(self)
        except asyncio.CancelledError:
            self._shut(self.close_reason or "server stopping")
            raise
        except Exception:  # a bug in one link's handler must not go unseen or spread
            log.exception("link handler failed %s", kv(peer=self.peer))
            self._shut("internal error")

    def _check_idle(self) -> None:
        """Far cheaper than a timeout around every read, which runs for every frame."""
        assert self.idle_timeout is not None
        if self._closed:
            return
        due = self._last_read + self.idle_timeout
        if self._loop.time() < due:
            self._idle_timer = self._loop.call_at(due, self._check_idle)
            return
        self._observer.protocol_error(LinkErrorKind.IDLE_TIMEOUT)
        self._shut(f"idle for more than {self.idle_timeout}s")

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.set_write_buffer_limits(high=_WRITE_HIGH_WATER)
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.peer_host = str(peer[0]) if isinstance(peer, tuple) else self.peer
        if self._admit is not None and not self._admit(self):
            self._closed = True
            self.close_reason = "refused: too many connections"
            transport.abort()

    def data_received(self, data: bytes) -> None:
        self._last_read = self._loop.time()
        dropped_before = self._decoder.dropped_bytes
        try:
            items = self._decoder.feed(data)
        except FrameTooLarge as exc:
            # Frames completed before the oversized one are still answered.
            self._handle(cast(list[Frame | Control], list(exc.decoded)))
            if not self._closed:
                self._observer.protocol_error(LinkErrorKind.of(exc.code))
                if self._handler is None:
                    self._inbox.append(exc)  # recv() raises it, then LinkClosed
                self._shut(exc.message)
            return
        if self._decoder.dropped_bytes != dropped_before:
            self.refused(LinkErrorKind.STRAY_BYTES)
        if items:
            self._handle(items)

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost says "closed by peer"

    def pause_writing(self) -> None:
        # The peer is not reading our ACKs: stop reading its frames until it does.
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)
        self._update_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.close_reason = self.close_reason or (
            "closed by peer" if exc is None else f"connection error: {exc}"
        )
        for timer in (self._open_timer, self._idle_timer):
            if timer is not None:
                timer.cancel()
        gone = LinkClosed(f"{self.peer}: {self.close_reason}")
        if not self._opening.done():
            self._opening.set_exception(LinkClosed(f"{self.peer} closed during the handshake"))
            self._opening.exception()  # retrieved: nobody may be waiting (a port probe)
        for pending in (self._reply, self._drain_waiter):
            if pending is not None and not pending.done():
                pending.set_exception(gone)
        self._wake_receivers()
        self._lost.set_result(None)
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback()
            except Exception:  # one failing callback must not skip the others
                log.exception("close callback failed %s", kv(peer=self.peer))

    # --- decoding ---------------------------------------------------------------------

    def _handle(self, items: list[Frame | Control]) -> None:
        if not items:
            return
        if not self._opening.done():
            first = items[0]
            if first is not self._expect:
                self._observer.protocol_error(LinkErrorKind.HANDSHAKE)
                error = f"{self.peer} sent {first!r} instead of {self._expect.name}"
                log.info("link did not open %s", kv(peer=self.peer, error=error))
                self._opening.set_exception(LinkError(error))
                self._opening.exception()  # retrieved: a server has nobody waiting
                self._shut("handshake failed")
                return
            if first is Control.ENQ:
                self._write(_ACK)
            self._opened()
            items = items[1:]  # a fast peer's first frame may share the read
        for item in items:
            if self._closed:
                return
            if isinstance(item, Frame):
                self._on_frame(item)
            elif item is Control.EOT:
                self._shut("peer sent EOT")
                return
            elif item is Control.ENQ:
                self._write(_ACK)
            elif self._reply is not None and not self._reply.done():
                self._reply.set_result(item)
            else:
                self.refused(LinkErrorKind.UNEXPECTED_CONTROL)

    def _on_frame(self, frame: Frame) -> None:
        if not frame.valid:
            self.refused(LinkErrorKind.BAD_LRC)
            self._write(_NACK)
            return
        self._observer.frame_in()
        self._write(_ACK)
        try:
            received: Received = decode_message(frame.data, self._accept)
        except MessageError as exc:
            self.refused(LinkErrorKind.of(exc.code))
            if self._closed:  # that was one too many: nobody answers it
                return
            received = exc
        self._deliver(received)

    def _deliver(self, received: Received) -> None:
        handler = self._handler
        if handler is not None:
            try:
                handler(received)
            except Exception:  # one bad message must not take the link (or others) down
                log.exception("message handler failed %s", kv(peer=self.peer))
            return
        self._inbox.append(received)
        self._wake_receivers()
        if len(self._inbox) >= _INBOX_HIGH_WATER and not self._inbox_full:
            # Backpressure: stop reading until recv() catches up.
            self._inbox_full = True
            self._update_reading()

    def _wake_receivers(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _update_reading(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        pause = self._inbox_full or self._write_paused
        if pause and transport.is_reading():
            transport.pause_reading()
        elif not pause and not transport.is_reading():
            transport.resume_reading()

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _shut(self, reason: str) -> None:
        """Stop the link now (connection_lost follows)."""
        self.close_reason = self.close_reason or reason
        self._closed = True
        self._wake_receivers()
        if self._transport is not None:
            self._transport.close()

    # --- public API -----------------------------------------------------------------

    def refused(self, kind: LinkErrorKind) -> None:
        """Count one protocol error of the peer; past its budget the link is closed."""
        self._observer.protocol_error(kind)
        budget = self._budget
        if budget is None or self._closed:
            return
        now = self._loop.time()
        if now - self._errors_since > budget.window:
            self._errors, self._errors_since = 0, now
        self._errors += 1
        if self._errors > budget.errors:
            self._observer.protocol_error(LinkErrorKind.ERROR_BUDGET)
            log.info(
                "link closed %s",
                kv(peer=self.peer, error=f"more than {budget.errors} errors in {budget.window}s"),
            )
            self._shut(f"more than {budget.errors} protocol errors in {budget.window}s")

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def transport(self) -> asyncio.Transport | None:
        """The socket's transport (tests write raw bytes or cut the link with it)."""
        return self._transport

    def deliver_to(self, handler: Callable[[Received], None]) -> None:
        """Hand every message to ``handler`` as it is decoded, instead of to :meth:`recv`.

        ``handler`` runs inside the event loop's read callback: it must not block
        (send from it with a task). Messages already queued go to it first.
        """
        self._handler = handler
        while self._inbox:
            item = self._inbox.popleft()
            if not isinstance(item, FrameTooLarge):  # the link is closing anyway
                handler(item)
        if self._inbox_full:
            self._inbox_full = False
            self._update_reading()

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the connection is gone (soon, if it already is)."""
        if self._lost.done():
            self._loop.call_soon(callback)
        else:
            self._close_callbacks.append(callback)

    async def send(self, msg: Message) -> None:
        """Send one message and wait for its ACK, resending on NACK a bounded number of times."""
        frame = encode_frame(encode_message(msg))
        async with self._send_lock:
            for _attempt in range(1 + self.max_resends):
                if self._closed or self._transport is None:
                    raise LinkClosed(f"{self.peer}: {self.close_reason or 'closed'}")
                reply = self._reply = self._loop.create_future()
                try:
                    self._transport.write(frame)
                    async with asyncio.timeout(self.timeout):
                        if self._write_paused:
                            self._drain_waiter = self._loop.create_future()
                            await self._drain_waiter
                        answer = await reply
                except TimeoutError:
                    raise LinkTimeout(
                        f"{self.peer} did not acknowledge {msg.TYPE.value} within {self.timeout}s"
                    ) from None
                finally:
                    self._reply = self._drain_waiter = None
                    if reply.done() and not reply.cancelled():
                        reply.exception()  # seen: a lost link fails it while we drain
                if answer is Control.ACK:
                    self._observer.frame_out()
                    return
            raise SendFailed(f"{self.peer} NACKed {msg.TYPE.value} {1 + self.max_resends} times")

    async def recv(self, timeout: float | None = None) -> Message:
        """The next valid message.

        Raises :class:`MessageError` for a frame that is not an acceptable message
        (the link stays open; answer it with an ``ErrorReply``), :class:`LinkTimeout`
        when nothing arrives in time and :class:`LinkClosed` when the link is gone.
        Messages that arrived before the link closed are still returned first.
        """
        wait = self.timeout if timeout is None else timeout
        if not self._inbox:
            try:
                async with asyncio.timeout(wait):
                    while not self._inbox and not self._closed:
                        waiter: asyncio.Future[None] = self._loop.create_future()
                        self._waiters.append(waiter)
                        try:
                            await waiter
                        finally:
                            if waiter in self._waiters:  # timed out: do not pile up
                                self._waiters.remove(waiter)
            except TimeoutError:
                raise LinkTimeout(f"nothing from {self.peer} within {wait}s") from None
            if not self._inbox:
                raise LinkClosed(f"{self.peer}: {self.close_reason or 'closed'}")
        item = self._inbox.popleft()
        if self._inbox_full and len(self._inbox) < _INBOX_HIGH_WATER // 2:
            self._inbox_full = False
            self._update_reading()
        if isinstance(item, MessageError | FrameTooLarge):
            raise item
        return item

    async def request(self, msg: Message, timeout: float | None = None) -> Message:
        """Send a message and return the next message received (one request in flight)."""
        await self.send(msg)
        return await self.recv(timeout)

    async def close(self, reason: str = "closed") -> None:
        """Close cleanly: EOT, then the socket."""
        if not self._closed:
            self.close_reason = reason
            self._write(_EOT)
        await self.abort()

    async def abort(self) -> None:
        """Close the socket now and wait (briefly) until it is gone."""
        self._shut(self.close_reason or "closed")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                await asyncio.shield(self._lost)
        task = self._link_task
        if task is not None and task is not asyncio.current_task() and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
