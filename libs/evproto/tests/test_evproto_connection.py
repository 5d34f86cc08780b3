"""The framed TCP link over real loopback sockets.

A ``FramedConnection`` on one side; on the other either another
``FramedConnection`` or a ``RawPeer`` that writes exact bytes (to NACK, send a
bad LRC, stay silent, or put two things in one write).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from evproto.connection import FramedConnection
from evproto.errors import (
    FrameTooLarge,
    LinkClosed,
    LinkTimeout,
    MalformedMessage,
    SendFailed,
    UnknownMessageType,
)
from evproto.framing import Control, Frame, FrameDecoder, encode_frame, lrc
from evproto.messages import CHANNELS, EngineInfo, HealthAnswer, HealthRequest, InfoRequest
from evproto.schema import encode_message
from evproto.states import Health

HOST = "127.0.0.1"
DEADLINE = 5.0  # an upper bound for events that must happen; never a sleep
ENGINE_ACCEPTS = CHANNELS["engine<-monitor"]
MONITOR_ACCEPTS = CHANNELS["monitor<-engine"]


class RawPeer:
    """The other end of a socket, speaking bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._decoder = FrameDecoder()
        self._pending: list[Frame | Control] = []

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def next_item(self) -> Frame | Control:
        """The next frame or control byte from the link under test."""
        async with asyncio.timeout(DEADLINE):
            while not self._pending:
                chunk = await self.reader.read(65536)
                if not chunk:
                    raise EOFError("the link under test closed")
                self._pending += self._decoder.feed(chunk)
        return self._pending.pop(0)

    async def closed_by_other_side(self) -> bool:
        """True once EOF arrives (anything before it is skipped)."""
        async with asyncio.timeout(DEADLINE):
            while await self.reader.read(65536):
                pass
        return True


class Loopback:
    """Two listening sockets on 127.0.0.1: a raw one that hands out the accepted
    streams (the peer of a client link) and ``FramedConnection.serve`` (the links it
    opens, for a raw client or a FramedConnection to talk to)."""

    def __init__(self) -> None:
        self.port = 0
        self._accepted: asyncio.Queue[RawPeer] = asyncio.Queue()
        self._links: asyncio.Queue[FramedConnection] = asyncio.Queue()
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None
        self._link_server: asyncio.Server | None = None
        self.link_port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_client, HOST, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        await self._accepted.put(RawPeer(reader, writer))

    async def accepted(self) -> RawPeer:
        return await asyncio.wait_for(self._accepted.get(), DEADLINE)

    async def serve(self, **kwargs: Any) -> None:
        """Start the framed server; its links take ``kwargs``."""

        async def on_link(conn: FramedConnection) -> None:
            await self._links.put(conn)

        self._link_server = await FramedConnection.serve(
            on_link, HOST, 0, accept=ENGINE_ACCEPTS, **kwargs
        )
        self.link_port = self._link_server.sockets[0].getsockname()[1]

    async def raw_client(self) -> RawPeer:
        """A raw client of the framed server (started with defaults if not yet)."""
        if self._link_server is None:
            await self.serve()
        reader, writer = await asyncio.open_connection(HOST, self.link_port)
        self._writers.append(writer)
        return RawPeer(reader, writer)

    async def accept_link(self) -> FramedConnection:
        """The next link the framed server opened."""
        return await asyncio.wait_for(self._links.get(), DEADLINE)

    async def connect(self, **kwargs: Any) -> FramedConnection:
        kwargs.setdefault("timeout", DEADLINE)
        return await FramedConnection.connect(HOST, self.port, accept=MONITOR_ACCEPTS, **kwargs)

    async def connect_to_server(self) -> FramedConnection:
        if self._link_server is None:
            await self.serve()
        return await FramedConnection.connect(
            HOST, self.link_port, accept=MONITOR_ACCEPTS, timeout=DEADLINE
        )

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
        for server in (self._server, self._link_server):
            if server is not None:
                server.close()
                await server.wait_closed()


@pytest.fixture
async def loopback() -> AsyncIterator[Loopback]:
    server = Loopback()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def link(loopback: Loopback) -> AsyncIterator[tuple[FramedConnection, FramedConnection]]:
    """(monitor side, engine side) of one real link."""
    client = await loopback.connect_to_server()
    server = await loopback.accept_link()
    yield client, server
    await client.abort()
    await server.abort()


class Recorder:
    """A LinkObserver that remembers what it was told."""

    def __init__(self) -> None:
        self.frames_in = 0
        self.frames_out = 0
        self.errors: list[str] = []

    def frame_in(self) -> None:
        self.frames_in += 1

    def frame_out(self) -> None:
        self.frames_out += 1

    def protocol_error(self, kind: str) -> None:
        self.errors.append(kind)


# --- handshake ---------------------------------------------------------------------


async def test_connect_sends_enq_and_opens_on_ack(loopback: Loopback) -> None:
    connecting = asyncio.create_task(loopback.connect())
    peer = await loopback.accepted()

    assert await peer.next_item() is Control.ENQ
    assert not connecting.done()
    peer.write(Control.ACK.byte)
    conn = await connecting

    assert not conn.closed
    await conn.close()


async def test_accept_link_answers_enq_with_ack(loopback: Loopback) -> None:
    peer = await loopback.raw_client()
    accepting = asyncio.create_task(loopback.accept_link())
    peer.write(Control.ENQ.byte)

    assert await peer.next_item() is Control.ACK
    conn = await accepting
    await conn.close()


async def test_a_peer_that_accepts_and_never_answers_times_out_connect(
    loopback: Loopback,
) -> None:
    with pytest.raises(LinkTimeout, match="no ACK"):
        await loopback.connect(timeout=0.3)


async def test_connect_to_a_closed_port_is_link_closed() -> None:
    probe = Loopback()
    await probe.start()
    port = probe.port
    await probe.close()

    with pytest.raises(LinkClosed, match="cannot connect"):
        await FramedConnection.connect(HOST, port, accept=MONITOR_ACCEPTS, timeout=DEADLINE)


async def test_a_first_frame_in_the_same_read_as_the_ack_is_not_lost(loopback: Loopback) -> None:
    connecting = asyncio.create_task(loopback.connect())
    peer = await loopback.accepted()
    assert await peer.next_item() is Control.ENQ
    answer = HealthAnswer(cp_id="CP-1", seq=1, health=Health.OK)

    peer.write(Control.ACK.byte + encode_frame(encode_message(answer)))
    conn = await connecting

    assert await conn.recv() == answer
    assert await peer.next_item() is Control.ACK  # and it was acknowledged
    await conn.close()


async def test_a_first_frame_in_the_same_write_as_the_enq_is_not_lost(loopback: Loopback) -> None:
    peer = await loopback.raw_client()
    peer.write(Control.ENQ.byte + encode_frame(encode_message(HealthRequest(seq=9))))

    conn = await loopback.accept_link()

    assert await conn.recv() == HealthRequest(seq=9)
    assert [await peer.next_item(), await peer.next_item()] == [Control.ACK, Control.ACK]
    await conn.close()


# --- sending ------------------------------------------------------------------------


async def _open_with_raw_peer(
    loopback: Loopback, **kwargs: Any
) -> tuple[FramedConnection, RawPeer]:
    connecting = asyncio.create_task(loopback.connect(**kwargs))
    peer = await loopback.accepted()
    assert await peer.next_item() is Control.ENQ
    peer.write(Control.ACK.byte)
    return await connecting, peer


async def _accept_from_raw_peer(
    loopback: Loopback, **kwargs: Any
) -> tuple[FramedConnection, RawPeer]:
    await loopback.serve(**kwargs)
    peer = await loopback.raw_client()
    peer.write(Control.ENQ.byte)
    conn = await loopback.accept_link()
    assert await peer.next_item() is Control.ACK
    return conn, peer


async def test_send_waits_for_the_ack(loopback: Loopback) -> None:
    conn, peer = await _open_with_raw_peer(loopback)
    sending = asyncio.create_task(conn.send(InfoRequest()))

    frame = await peer.next_item()
    assert frame == Frame(b'{"type":"info_request","v":1}')
    assert not sending.done()

    peer.write(Control.ACK.byte)
    await asyncio.wait_for(sending, DEADLINE)
    await conn.close()


async def test_a_nacking_peer_gets_resends_then_send_failed(loopback: Loopback) -> None:
    observer = Recorder()
    conn, peer = await _open_with_raw_peer(loopback, max_resends=2, observer=observer)
    sending = asyncio.create_task(conn.send(HealthRequest(seq=1)))

    received = []
    for _ in range(3):  # the first send and two resends
        received.append(await peer.next_item())
        peer.write(Control.NACK.byte)

    with pytest.raises(SendFailed, match="3 times"):
        await asyncio.wait_for(sending, DEADLINE)
    assert received == [Frame(encode_message(HealthRequest(seq=1)))] * 3
    assert observer.frames_out == 0
    await conn.close()


async def test_a_nack_then_ack_succeeds_on_the_resend(loopback: Loopback) -> None:
    conn, peer = await _open_with_raw_peer(loopback)
    sending = asyncio.create_task(conn.send(HealthRequest(seq=1)))

    first = await peer.next_item()
    peer.write(Control.NACK.byte)
    second = await peer.next_item()
    peer.write(Control.ACK.byte)

    await asyncio.wait_for(sending, DEADLINE)
    assert first == second
    await conn.close()


async def test_a_bad_lrc_frame_is_nacked_and_the_good_resend_accepted(loopback: Loopback) -> None:
    observer = Recorder()
    conn, peer = await _accept_from_raw_peer(loopback, observer=observer)
    data = encode_message(HealthRequest(seq=4))

    peer.write(b"\x02" + data + b"\x03" + bytes([lrc(data) ^ 0x01]))
    assert await peer.next_item() is Control.NACK
    peer.write(encode_frame(data))
    assert await peer.next_item() is Control.ACK

    assert await conn.recv() == HealthRequest(seq=4)
    assert observer.errors == ["bad_lrc"]
    assert observer.frames_in == 1
    await conn.close()


async def test_send_timeout_names_the_message(loopback: Loopback) -> None:
    conn, _peer = await _open_with_raw_peer(loopback, timeout=0.3)
    with pytest.raises(LinkTimeout, match="info_request"):
        await conn.send(InfoRequest())
    await conn.close()


# --- receiving ----------------------------------------------------------------------


async def test_messages_flow_both_ways_and_request_returns_the_reply(
    link: tuple[FramedConnection, FramedConnection],
) -> None:
    monitor, engine = link
    info = EngineInfo(cp_id="CP-1", location="Bay 1", price=None, power_kw=22.0)

    async def engine_side() -> None:
        assert await engine.recv() == InfoRequest()
        await engine.send(info)

    answering = asyncio.create_task(engine_side())
    assert await monitor.request(InfoRequest()) == info
    await asyncio.wait_for(answering, DEADLINE)


async def test_recv_times_out_with_link_timeout(
    link: tuple[FramedConnection, FramedConnection],
) -> None:
    monitor, _engine = link
    with pytest.raises(LinkTimeout, match="nothing from"):
        await monitor.recv(timeout=0.2)
    assert not monitor.closed


async def test_eot_closes_cleanly_with_the_reason(
    link: tuple[FramedConnection, FramedConnection],
) -> None:
    monitor, engine = link

    await monitor.close("shutting down")

    with pytest.raises(LinkClosed, match="peer sent EOT"):
        await engine.recv()
    with pytest.raises(LinkClosed):  # and every later call too
        await engine.recv()
    with pytest.raises(LinkClosed):
        await engine.send(HealthAnswer(cp_id="CP-1", seq=1, health=Health.OK))
    assert engine.closed
    assert monitor.close_reason == "shutting down"


async def test_eot_is_sent_on_the_wire(loopback: Loopback) -> None:
    conn, peer = await _open_with_raw_peer(loopback)
    await conn.close()
    assert await peer.next_item() is Control.EOT


async def test_the_peer_vanishing_is_link_closed(loopback: Loopback) -> None:
    conn, peer = await _open_with_raw_peer(loopback)
    peer.writer.close()
    with pytest.raises(LinkClosed, match="closed by peer"):
        await conn.recv()


async def test_an_idle_link_is_closed_after_idle_timeout(loopback: Loopback) -> None:
    observer = Recorder()
    await loopback.serve(idle_timeout=0.3, observer=observer)
    peer = await loopback.raw_client()
    peer.write(Control.ENQ.byte)
    conn = await loopback.accept_link()

    with pytest.raises(LinkClosed, match=r"idle for more than 0\.3s"):
        await conn.recv(timeout=DEADLINE)
    assert await peer.closed_by_other_side()
    assert "idle_timeout" in observer.errors


async def test_an_oversized_frame_closes_the_link_with_frame_too_large(
    loopback: Loopback,
) -> None:
    conn, peer = await _accept_from_raw_peer(loopback, max_frame=64)
    before = encode_frame(encode_message(HealthRequest(seq=1)))

    peer.write(before + b"\x02" + b"x" * 100)

    assert await conn.recv() == HealthRequest(seq=1)  # what came first is kept
    with pytest.raises(FrameTooLarge):
        await conn.recv()
    with pytest.raises(LinkClosed, match="maximum of 64"):
        await conn.recv()
    assert await peer.closed_by_other_side()


async def test_invalid_messages_raise_message_error_and_the_link_stays_usable(
    loopback: Loopback,
) -> None:
    observer = Recorder()
    conn, peer = await _accept_from_raw_peer(loopback, observer=observer)

    peer.write(encode_frame(b"{not json"))
    peer.write(encode_frame(b'{"type":"teleport"}'))
    peer.write(encode_frame(encode_message(EngineInfo(cp_id="C", location="x", power_kw=1))))
    peer.write(encode_frame(encode_message(HealthRequest(seq=2))))

    with pytest.raises(MalformedMessage):
        await conn.recv()
    with pytest.raises(UnknownMessageType, match="teleport"):
        await conn.recv()
    with pytest.raises(UnknownMessageType, match="not accepted here"):
        await conn.recv()
    assert await conn.recv() == HealthRequest(seq=2)
    assert [await peer.next_item() for _ in range(4)] == [Control.ACK] * 4
    assert observer.errors == ["malformed", "unknown_type", "unknown_type"]
    await conn.close()


async def test_stray_bytes_and_enq_between_frames_are_tolerated(loopback: Loopback) -> None:
    observer = Recorder()
    conn, peer = await _accept_from_raw_peer(loopback, observer=observer)

    peer.write(b"junk" + Control.ENQ.byte + encode_frame(encode_message(HealthRequest(seq=3))))

    assert await conn.recv() == HealthRequest(seq=3)
    assert [await peer.next_item(), await peer.next_item()] == [Control.ACK, Control.ACK]
    assert "stray_bytes" in observer.errors
    await conn.close()


async def test_close_is_idempotent(link: tuple[FramedConnection, FramedConnection]) -> None:
    monitor, _engine = link
    await monitor.close()
    await monitor.close()
    assert monitor.closed


async def test_a_flooding_peer_is_throttled_not_buffered(loopback: Loopback) -> None:
    """The link stops reading while recv() is behind: what it holds stays bounded."""
    from evproto.connection import _INBOX_HIGH_WATER

    peer = await loopback.raw_client()
    peer.write(Control.ENQ.byte)
    link = await loopback.accept_link()
    assert await peer.next_item() is Control.ACK
    flood = _INBOX_HIGH_WATER * 100
    frame = encode_frame(encode_message(HealthRequest(seq=1)))
    peer.write(frame * flood)
    acks = 0
    while True:  # the peer gets ACKs for what was read, then no more until recv() runs
        try:
            acks += len(await asyncio.wait_for(peer.reader.read(65536), 0.5))
        except TimeoutError:
            break
    held = len(link._inbox)
    assert _INBOX_HIGH_WATER <= held < flood  # at most one socket read past the mark
    assert acks == held
    for _ in range(flood):
        assert await link.recv(DEADLINE) == HealthRequest(seq=1)
    await link.close()


# --- callback delivery (servers holding many links) --------------------------------------


async def test_deliver_to_hands_over_queued_then_new_messages_in_order(
    loopback: Loopback,
) -> None:
    conn, peer = await _accept_from_raw_peer(loopback)
    peer.write(encode_frame(encode_message(HealthRequest(seq=1))))
    assert await peer.next_item() is Control.ACK  # queued before the handler is set
    got: list[object] = []
    everything = asyncio.Event()

    def handler(item: object) -> None:
        got.append(item)
        if len(got) == 3:
            everything.set()

    conn.deliver_to(handler)
    peer.write(encode_frame(b"{not json") + encode_frame(encode_message(HealthRequest(seq=2))))
    await asyncio.wait_for(everything.wait(), DEADLINE)

    assert got[0] == HealthRequest(seq=1)
    assert isinstance(got[1], MalformedMessage)  # answerable by the handler; link stays up
    assert got[2] == HealthRequest(seq=2)
    assert not conn.closed
    await conn.close()


async def test_a_failing_handler_is_logged_and_the_link_goes_on(
    loopback: Loopback, caplog: pytest.LogCaptureFixture
) -> None:
    conn, peer = await _accept_from_raw_peer(loopback)
    seen: asyncio.Queue[object] = asyncio.Queue()

    def handler(item: object) -> None:
        seen.put_nowait(item)
        if item == HealthRequest(seq=1):
            raise RuntimeError("handler bug")

    conn.deliver_to(handler)
    peer.write(encode_frame(encode_message(HealthRequest(seq=1))))
    peer.write(encode_frame(encode_message(HealthRequest(seq=2))))

    assert await asyncio.wait_for(seen.get(), DEADLINE) == HealthRequest(seq=1)
    assert await asyncio.wait_for(seen.get(), DEADLINE) == HealthRequest(seq=2)
    assert "message handler failed" in caplog.text
    await conn.close()


async def test_on_close_runs_once_the_peer_is_gone_and_after_the_fact(
    loopback: Loopback,
) -> None:
    conn, peer = await _accept_from_raw_peer(loopback)
    gone = asyncio.Event()
    conn.on_close(gone.set)

    peer.write(Control.EOT.byte)
    await asyncio.wait_for(gone.wait(), DEADLINE)
    assert conn.close_reason == "peer sent EOT"

    late = asyncio.Event()
    conn.on_close(late.set)
    await asyncio.wait_for(late.wait(), DEADLINE)


# --- serving --------------------------------------------------------------------------


async def test_a_client_that_never_sends_enq_is_dropped_and_counted(loopback: Loopback) -> None:
    observer = Recorder()
    await loopback.serve(handshake_timeout=0.3, observer=observer)
    peer = await loopback.raw_client()

    assert await peer.closed_by_other_side()
    assert observer.errors == ["handshake_timeout"]


async def test_a_client_that_opens_with_something_else_is_dropped_and_counted(
    loopback: Loopback,
) -> None:
    observer = Recorder()
    await loopback.serve(observer=observer)
    peer = await loopback.raw_client()
    peer.write(encode_frame(encode_message(HealthRequest(seq=1))))

    assert await peer.closed_by_other_side()
    assert observer.errors == ["handshake"]


async def test_a_port_probe_is_not_an_error(loopback: Loopback) -> None:
    observer = Recorder()
    await loopback.serve(observer=observer)
    peer = await loopback.raw_client()
    peer.writer.close()
    await peer.writer.wait_closed()
    probe_after = await loopback.raw_client()  # the server still serves
    probe_after.write(Control.ENQ.byte)
    assert await probe_after.next_item() is Control.ACK
    assert observer.errors == []
