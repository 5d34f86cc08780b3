"""The monitor fleet and its link over real sockets, against the bare server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from evbench.bare import BareCounters, start_bare_server
from evbench.link import LinkCounters, MonitorLink
from evbench.monitors import FleetConfig, MonitorFleet, cp_id_for
from evproto.framing import Control, Frame, FrameDecoder

Until = Callable[..., Awaitable[None]]  # the `until` fixture of conftest.py


@pytest.fixture
async def bare() -> AsyncIterator[tuple[int, BareCounters]]:
    server, counters = await start_bare_server("127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], counters
    server.close()
    await server.wait_closed()


async def test_every_cp_connects_and_reports_every_interval(
    bare: tuple[int, BareCounters], until: Until
) -> None:
    port, counters = bare
    cp_ids = [cp_id_for(i) for i in range(20)]
    fleet = MonitorFleet(
        FleetConfig(
            host="127.0.0.1", port=port, cp_ids=cp_ids, sources=["127.0.0.1"],
            registration_token=None, interval=0.05,
        )
    )  # fmt: skip
    fleet.start_heartbeats()
    await fleet.connect_all()
    assert fleet.held == 20
    await until(lambda: fleet.counters.acked >= 60)
    await fleet.close()
    assert counters.connections == 20
    assert counters.frames >= 60
    assert fleet.counters.nacked == 0
    assert fleet.counters.closed_by_peer == 0
    assert len(fleet.counters.ack_rtts) == fleet.counters.acked


class _NackOnce(asyncio.Protocol):
    """A server that NACKs each frame's first copy and ACKs the resend."""

    def __init__(self) -> None:
        self.decoder = FrameDecoder()
        self.seen: set[bytes] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        for item in self.decoder.feed(data):
            if item is Control.ENQ:
                self.transport.write(Control.ACK.byte)
            elif isinstance(item, Frame):
                first = item.data not in self.seen
                self.seen.add(item.data)
                self.transport.write(Control.NACK.byte if first else Control.ACK.byte)


async def test_a_nacked_status_is_resent_and_then_acked(until: Until) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_NackOnce, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    counters = LinkCounters()
    link = MonitorLink("CP-1", counters)
    await loop.create_connection(lambda: link, "127.0.0.1", port)
    await link.handshake(5.0)
    assert link.send_status()
    await until(lambda: counters.acked == 1)
    assert counters.nacked == 1
    assert counters.send_failed == 0
    link.close()
    server.close()
