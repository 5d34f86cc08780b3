"""Transport: an asyncio framed connection (handshake, ACK/NACK, resend, EOT).

One reader task per connection decodes the byte stream: data frames are ACKed
(or NACKed on a bad LRC) and queued for :meth:`FramedConnection.recv`; ACK and
NACK resolve the one frame in flight from :meth:`FramedConnection.send`. Every
wait has a timeout and every read is bounded by the decoder's maximum frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
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
from evproto.schema import Message, MsgType, decode_message, encode_message

__all__ = ["FramedConnection", "LinkObserver", "NullObserver"]

_READ_CHUNK = 16 * 1024
_WRITE_HIGH_WATER = 256 * 1024
_INBOX_HIGH_WATER = 256  # messages received but not yet taken by recv()


class LinkObserver(Protocol):
    """Hooks a service uses to count traffic and errors (metrics)."""

    def frame_in(self) -> None: ...
    def frame_out(self) -> None: ...
    def protocol_error(self, kind: str) -> None: ...


class NullObserver:
    def frame_in(self) -> None:
        pass

    def frame_out(self) -> None:
        pass

    def protocol_error(self, kind: str) -> None:
        pass


_NULL = NullObserver()
_CLOSED = object()


class FramedConnection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        accept: frozenset[MsgType],
        timeout: float = 5.0,
        idle_timeout: float | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        max_resends: int = 3,
        observer: LinkObserver = _NULL,
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._accept = accept
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.max_resends = max_resends
        self._observer = observer
        self._decoder = FrameDecoder(max_frame)
        self._inbox: asyncio.Queue[Message | MessageError | object] = asyncio.Queue()
        self._inbox_space = asyncio.Event()
        self._inbox_space.set()
        self._send_lock = asyncio.Lock()
        self._reply: asyncio.Future[Control] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._leftover: list[Frame | Control] = []
        self._loop = asyncio.get_running_loop()
        self._last_read = 0.0
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_expired = False
        self._closed = False
        self.close_reason = ""
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

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
        **kwargs: object,
    ) -> FramedConnection:
        """Open a client link: TCP connect, then ENQ -> ACK."""
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, ssl=ssl_context, limit=_READ_CHUNK),
                timeout,
            )
        except TimeoutError:
            raise LinkTimeout(f"connecting to {host}:{port} timed out after {timeout}s") from None
        except OSError as exc:
            raise LinkClosed(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
        conn = cls(reader, writer, accept=accept, timeout=timeout, **kwargs)  # type: ignore[arg-type]
        try:
            writer.write(Control.ENQ.byte)
            await conn._expect_control(Control.ACK)
        except BaseException:
            await conn.abort()
            raise
        conn._start()
        return conn

    @classmethod
    async def accept_link(
        cls,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        accept: frozenset[MsgType],
        timeout: float = 5.0,
        **kwargs: object,
    ) -> FramedConnection:
        """Serve a client link: wait for ENQ, answer ACK."""
        conn = cls(reader, writer, accept=accept, timeout=timeout, **kwargs)  # type: ignore[arg-type]
        try:
            await conn._expect_control(Control.ENQ)
            writer.write(Control.ACK.byte)
        except BaseException:
            await conn.abort()
            raise
        conn._start()
        return conn

    async def _expect_control(self, wanted: Control) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise LinkTimeout(f"no {wanted.name} from {self.peer} within {self.timeout}s")
            try:
                chunk = await asyncio.wait_for(self._reader.read(_READ_CHUNK), remaining)
            except TimeoutError:
                raise LinkTimeout(
                    f"no {wanted.name} from {self.peer} within {self.timeout}s"
                ) from None
            except OSError as exc:
                raise LinkClosed(f"{self.peer}: {exc}") from None
            if not chunk:
                raise LinkClosed(f"{self.peer} closed during the handshake")
            items = self._decoder.feed(chunk)
            if not items:
                continue
            if items[0] is not wanted:
                self._observer.protocol_error("handshake")
                raise LinkError(f"{self.peer} sent {items[0]!r} instead of {wanted.name}")
            self._leftover = items[1:]  # a fast peer's first frame may share the read
            return

    def _start(self) -> None:
        self._reader_task = asyncio.create_task(self._read_loop(), name=f"link-{self.peer}")
        if self.idle_timeout is not None:
            self._last_read = self._loop.time()
            self._idle_timer = self._loop.call_at(
                self._last_read + self.idle_timeout, self._check_idle
            )

    def _check_idle(self) -> None:
        """One timer per link, re-armed only when it fires: far cheaper than a timeout
        around every read, which runs for every frame of every link."""
        assert self.idle_timeout is not None
        due = self._last_read + self.idle_timeout
        if self._closed:
            return
        if self._loop.time() < due:
            self._idle_timer = self._loop.call_at(due, self._check_idle)
            return
        self._idle_expired = True
        self._reader.feed_eof()  # the read loop ends and says why

    # --- the reader task ----------------------------------------------------------

    async def _read_loop(self) -> None:
        reason = "closed by peer"
        try:
            items, self._leftover = self._leftover, []
            while True:
                stop = self._handle(items)
                if stop:
                    reason = stop
                    return
                if self._writer.transport.get_write_buffer_size() > _WRITE_HIGH_WATER:
                    await asyncio.wait_for(self._writer.drain(), self.timeout)
                if self._inbox.qsize() >= _INBOX_HIGH_WATER:
                    # Backpressure: stop reading until recv() catches up, so a peer
                    # flooding frames fills its own TCP window, not our memory.
                    self._inbox_space.clear()
                    await self._inbox_space.wait()
                chunk = await self._reader.read(_READ_CHUNK)
                if not chunk:
                    if self._idle_expired:
                        reason = f"idle for more than {self.idle_timeout}s"
                        self._observer.protocol_error("idle_timeout")
                    return
                self._last_read = self._loop.time()
                dropped_before = self._decoder.dropped_bytes
                try:
                    items = self._decoder.feed(chunk)
                except FrameTooLarge as exc:
                    # Frames completed before the oversized one are still answered.
                    self._handle(cast(list[Frame | Control], list(exc.decoded)))
                    reason = exc.message
                    self._observer.protocol_error(exc.code)
                    self._inbox.put_nowait(exc)
                    return
                if self._decoder.dropped_bytes != dropped_before:
                    self._observer.protocol_error("stray_bytes")
        except (OSError, TimeoutError) as exc:
            reason = f"connection error: {exc}"
        finally:
            self._closed = True
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self.close_reason = self.close_reason or reason
            if self._reply is not None and not self._reply.done():
                self._reply.set_exception(LinkClosed(f"{self.peer}: {self.close_reason}"))
            self._inbox.put_nowait(_CLOSED)
            self._writer.close()

    def _handle(self, items: list[Frame | Control]) -> str | None:
        """Act on decoded items; return a reason when the link must close."""
        for item in items:
            if isinstance(item, Frame):
                self._on_frame(item)
            elif item is Control.EOT:
                return "peer sent EOT"
            elif item is Control.ENQ:
                self._writer.write(Control.ACK.byte)
            elif self._reply is not None and not self._reply.done():
                self._reply.set_result(item)
            else:
                self._observer.protocol_error("unexpected_control")
        return None

    def _on_frame(self, frame: Frame) -> None:
        if not frame.valid:
            self._observer.protocol_error("bad_lrc")
            self._writer.write(Control.NACK.byte)
            return
        self._observer.frame_in()
        self._writer.write(Control.ACK.byte)
        try:
            self._inbox.put_nowait(decode_message(frame.data, self._accept))
        except MessageError as exc:
            self._observer.protocol_error(exc.code)
            self._inbox.put_nowait(exc)

    # --- public API -----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(self, msg: Message) -> None:
        """Send one message and wait for its ACK, resending on NACK a bounded number of times."""
        frame = encode_frame(encode_message(msg))
        async with self._send_lock:
            for _attempt in range(1 + self.max_resends):
                if self._closed:
                    raise LinkClosed(f"{self.peer}: {self.close_reason}")
                self._reply = asyncio.get_running_loop().create_future()
                try:
                    self._writer.write(frame)
                    await asyncio.wait_for(self._writer.drain(), self.timeout)
                    answer = await asyncio.wait_for(self._reply, self.timeout)
                except TimeoutError:
                    raise LinkTimeout(
                        f"{self.peer} did not acknowledge {msg.TYPE.value} within {self.timeout}s"
                    ) from None
                except (ConnectionError, OSError) as exc:
                    raise LinkClosed(f"{self.peer}: {exc}") from None
                finally:
                    self._reply = None
                if answer is Control.ACK:
                    self._observer.frame_out()
                    return
            raise SendFailed(f"{self.peer} NACKed {msg.TYPE.value} {1 + self.max_resends} times")

    async def recv(self, timeout: float | None = None) -> Message:
        """The next valid message.

        Raises :class:`MessageError` for a frame that is not an acceptable message
        (the link stays open; answer it with an ``ErrorReply``), :class:`LinkTimeout`
        when nothing arrives in time and :class:`LinkClosed` when the link is gone.
        """
        wait = self.timeout if timeout is None else timeout
        try:
            async with asyncio.timeout(wait):  # no task per call, unlike wait_for
                item = await self._inbox.get()
        except TimeoutError:
            raise LinkTimeout(f"nothing from {self.peer} within {wait}s") from None
        if self._inbox.qsize() < _INBOX_HIGH_WATER // 2:
            self._inbox_space.set()
        if item is _CLOSED:
            self._inbox.put_nowait(_CLOSED)  # later calls see the close too
            raise LinkClosed(f"{self.peer}: {self.close_reason}")
        if isinstance(item, MessageError | FrameTooLarge):
            raise item
        assert isinstance(item, Message)
        return item

    async def request(self, msg: Message, timeout: float | None = None) -> Message:
        """Send a message and return the next message received (one request in flight)."""
        await self.send(msg)
        return await self.recv(timeout)

    async def close(self, reason: str = "closed") -> None:
        """Close cleanly: EOT, then the socket."""
        if not self._closed:
            self.close_reason = reason
            with contextlib.suppress(OSError, RuntimeError):
                self._writer.write(Control.EOT.byte)
        await self.abort()

    async def abort(self) -> None:
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError, TimeoutError, RuntimeError):
            await asyncio.wait_for(self._writer.wait_closed(), 1.0)
        if self._reader_task is not None and self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
