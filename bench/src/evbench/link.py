"""The simulated monitor's framed TCP link, as a lean ``asyncio.Protocol``.

It speaks exactly the bytes of :class:`evproto.connection.FramedConnection`
(ENQ -> ACK, ``<STX><DATA><ETX><LRC>`` frames from :mod:`evproto.framing` and
:mod:`evproto.schema`, one frame in flight, ACK or NACK and a bounded resend,
EOT to close), but without a reader task and two ``wait_for`` per frame: on
this machine ``FramedConnection.send`` costs ~70 µs of client CPU per frame,
which at 10,000 heartbeats a second would take the core the central needs.
Status frames are encoded once per CP and health, so a heartbeat is one
``write`` and the ACK one callback.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from collections.abc import Callable

from evproto.errors import FrameTooLarge, LinkClosed, LinkTimeout, MessageError, SendFailed
from evproto.framing import Control, Frame, FrameDecoder, encode_frame
from evproto.messages import CHANNELS, Status
from evproto.schema import Message, decode_message, encode_message
from evproto.states import Health
from evproto.vocabulary import Channel

__all__ = ["LinkCounters", "MonitorLink", "status_frame"]

_ACCEPT = CHANNELS[Channel.MONITOR_FROM_CENTRAL]
_ACK = Control.ACK.byte
_NACK = Control.NACK.byte
_MAX_RESENDS = 3


def status_frame(cp_id: str, health: Health) -> bytes:
    return encode_frame(encode_message(Status(cp_id=cp_id, health=health)))


class LinkCounters:
    """Totals over every link of a fleet (plain ints: the hot path only adds)."""

    __slots__ = (
        "ack_rtts",
        "acked",
        "bad_frames",
        "closed_by_peer",
        "heartbeats",
        "late",
        "nacked",
        "pushed",
        "send_failed",
    )

    def __init__(self) -> None:
        self.heartbeats = 0  # status frames written
        self.acked = 0  # status frames ACKed
        self.nacked = 0  # NACKs received (each one resent)
        self.send_failed = 0  # a frame NACKed more than the resend bound
        self.late = 0  # a heartbeat was due while the previous one still had no ACK
        self.pushed = 0  # frames the central pushed after authentication (price updates)
        self.bad_frames = 0  # frames from the central with a bad LRC or not a message
        self.closed_by_peer = 0  # links the central closed
        self.ack_rtts: list[float] = []  # seconds from status written to its ACK


class _InFlight(enum.Enum):
    NONE = 0
    REQUEST = 1  # an authentication frame; its ACK resolves a future
    STATUS = 2  # a heartbeat; its ACK is counted


class MonitorLink(asyncio.Protocol):
    """One CP's link to the central (or to the bare server)."""

    def __init__(self, cp_id: str, counters: LinkCounters, *, rtt_every: int = 1) -> None:
        self.cp_id = cp_id
        self.counters = counters
        self.health = Health.OK
        self.change_written_at = 0.0  # loop time the last health change was written
        self.on_close: Callable[[MonitorLink], None] | None = None
        self._frames = {h: status_frame(cp_id, h) for h in (Health.OK, Health.KO)}
        self._decoder = FrameDecoder()
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._in_flight = _InFlight.NONE
        self._in_flight_frame = b""
        self._sent_at = 0.0
        self._resends = 0
        self._change_pending = False
        self._rtt_every = rtt_every
        self._rtt_countdown = rtt_every
        self._control: asyncio.Future[Control] | None = None
        self._inbox: deque[Message | MessageError] = deque()
        self._inbox_waiter: asyncio.Future[None] | None = None
        self.authenticated = False
        self.closed = False
        self.silent = False  # a hung monitor: the link stays open, nothing is sent
        self.close_reason = ""

    # --- asyncio.Protocol --------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            items = self._decoder.feed(data)
        except FrameTooLarge:
            self.counters.bad_frames += 1
            self._close_now("oversized frame from the central")
            return
        for item in items:
            if item is Control.ACK or item is Control.NACK:
                self._on_answer(item)
            elif isinstance(item, Frame):
                self._on_frame(item)
            elif item is Control.EOT:
                self._close_now("central sent EOT")
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed:
            self.counters.closed_by_peer += 1
            self.close_reason = self.close_reason or f"closed by the central: {exc or 'EOF'}"
        self.closed = True
        self._transport = None
        if self._control is not None and not self._control.done():
            self._control.set_exception(LinkClosed(f"{self.cp_id}: {self.close_reason}"))
        self._wake_inbox()
        if self.on_close is not None:
            self.on_close(self)

    # --- answers and frames from the peer -------------------------------------------

    def _on_answer(self, answer: Control) -> None:
        kind = self._in_flight
        if kind is _InFlight.NONE:
            if self._control is not None and not self._control.done():
                self._control.set_result(answer)  # the handshake's ACK
            return
        if answer is Control.NACK:
            self.counters.nacked += 1
            if self._resends < _MAX_RESENDS:
                self._resends += 1
                self._write(self._in_flight_frame)
                return
            self.counters.send_failed += 1
        self._in_flight = _InFlight.NONE
        if kind is _InFlight.STATUS:
            if answer is Control.ACK:
                self.counters.acked += 1
                self._rtt_countdown -= 1
                if self._rtt_countdown == 0:
                    self._rtt_countdown = self._rtt_every
                    self.counters.ack_rtts.append(self._loop.time() - self._sent_at)
            if self._change_pending:
                self.send_status()
        elif self._control is not None and not self._control.done():
            self._control.set_result(answer)

    def _on_frame(self, frame: Frame) -> None:
        if not frame.valid:
            self.counters.bad_frames += 1
            self._write(_NACK)
            return
        self._write(_ACK)
        if self.authenticated:
            self.counters.pushed += 1
            return
        try:
            self._inbox.append(decode_message(frame.data, _ACCEPT))
        except MessageError as exc:
            self.counters.bad_frames += 1
            self._inbox.append(exc)
        self._wake_inbox()

    def _wake_inbox(self) -> None:
        if self._inbox_waiter is not None and not self._inbox_waiter.done():
            self._inbox_waiter.set_result(None)

    # --- sending -------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._transport is not None:
            self._transport.write(data)

    def _close_now(self, reason: str) -> None:
        self.close_reason = reason
        if self._transport is not None:
            self._transport.close()

    async def handshake(self, timeout: float) -> None:
        """ENQ -> ACK."""
        await self._exchange(Control.ENQ.byte, _InFlight.NONE, timeout, "ENQ")

    async def request(self, msg: Message, timeout: float) -> Message:
        """Send an authentication message, wait for its ACK, then for the central's answer."""
        frame = encode_frame(encode_message(msg))
        self._in_flight_frame, self._resends = frame, 0
        answer = await self._exchange(frame, _InFlight.REQUEST, timeout, msg.TYPE.value)
        if answer is not Control.ACK:
            raise SendFailed(f"{self.cp_id}: {msg.TYPE.value} NACKed {1 + _MAX_RESENDS} times")
        return await self.recv(timeout)

    async def _exchange(self, data: bytes, kind: _InFlight, timeout: float, what: str) -> Control:
        if self.closed:
            raise LinkClosed(f"{self.cp_id}: {self.close_reason}")
        self._control = self._loop.create_future()
        self._in_flight = kind
        self._write(data)
        try:
            return await asyncio.wait_for(self._control, timeout)
        except TimeoutError:
            raise LinkTimeout(f"{self.cp_id}: no answer to {what} within {timeout}s") from None
        finally:
            self._control = None
            self._in_flight = _InFlight.NONE

    async def recv(self, timeout: float) -> Message:
        deadline = self._loop.time() + timeout
        while not self._inbox:
            if self.closed:
                raise LinkClosed(f"{self.cp_id}: {self.close_reason}")
            remaining = deadline - self._loop.time()
            if remaining <= 0:
                raise LinkTimeout(f"{self.cp_id}: nothing from the central within {timeout}s")
            self._inbox_waiter = self._loop.create_future()
            try:
                await asyncio.wait_for(self._inbox_waiter, remaining)
            except TimeoutError:
                continue
            finally:
                self._inbox_waiter = None
        item = self._inbox.popleft()
        if isinstance(item, MessageError):
            raise item
        return item

    def send_status(self) -> bool:
        """Write this CP's status frame now; False when the previous one is still unacknowledged."""
        if self.closed or self.silent:
            return False
        if self._in_flight is not _InFlight.NONE:
            self.counters.late += 1
            return False
        frame = self._frames[self.health]
        self._in_flight, self._in_flight_frame, self._resends = _InFlight.STATUS, frame, 0
        self._sent_at = self._loop.time()
        if self._change_pending:
            self._change_pending = False
            self.change_written_at = self._sent_at
        self.counters.heartbeats += 1
        self._write(frame)
        return True

    def change_health(self, health: Health) -> None:
        """Report a health change at once (after the frame in flight, if any, is ACKed)."""
        self.health = health
        self._change_pending = True
        if self._in_flight is _InFlight.NONE:
            self.send_status()

    @property
    def unacked_for(self) -> float:
        """Seconds the frame in flight has waited for its ACK (0 when none)."""
        if self._in_flight is _InFlight.NONE:
            return 0.0
        return self._loop.time() - self._sent_at

    def drop(self) -> None:
        """Reset the connection without EOT, as a killed monitor's kernel does."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = "dropped by the load generator"
        if self._transport is not None:
            self._transport.abort()

    def close(self) -> None:
        """EOT, then close (the central sees a clean end of the link)."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = "closed by the load generator"
        self._write(Control.EOT.byte)
        if self._transport is not None:
            self._transport.close()
