"""The reference frame servers over a real socket: ACK, NACK on a bad LRC, EOT closes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from evbench.bare import BareCounters, start_bare_server, start_framed_server
from evproto.framing import Control, encode_frame

ACK, NACK = Control.ACK.byte, Control.NACK.byte


Until = Callable[..., Awaitable[None]]  # the `until` fixture of conftest.py


@pytest.fixture(params=[start_bare_server, start_framed_server], ids=["bare", "framed"])
async def bare(request: pytest.FixtureRequest) -> AsyncIterator[tuple[int, BareCounters]]:
    server, counters = await request.param("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port, counters
    server.close()
    await server.wait_closed()


async def _link(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(Control.ENQ.byte)
    assert await asyncio.wait_for(reader.readexactly(1), 5) == ACK
    return reader, writer


async def test_a_frame_is_acked_and_counted(bare: tuple[int, BareCounters], until: Until) -> None:
    port, counters = bare
    reader, writer = await _link(port)
    writer.write(encode_frame(b'{"type":"status","cp_id":"CP-1","health":"OK"}'))
    assert await asyncio.wait_for(reader.readexactly(1), 5) == ACK
    await until(lambda: counters.frames == 1)
    assert counters.connections == 1
    writer.close()


async def test_a_bad_lrc_is_nacked(bare: tuple[int, BareCounters]) -> None:
    port, counters = bare
    reader, writer = await _link(port)
    good = encode_frame(b'{"type":"status"}')
    writer.write(good[:-1] + bytes([good[-1] ^ 0xFF]))
    assert await asyncio.wait_for(reader.readexactly(1), 5) == NACK
    assert counters.bad_lrc == 1
    assert counters.frames == 0
    writer.close()


async def test_frames_split_and_joined_across_writes_are_each_acked(
    bare: tuple[int, BareCounters], until: Until
) -> None:
    port, counters = bare
    reader, writer = await _link(port)
    status = b'{"type":"status","cp_id":"CP-%d","health":"OK"}'
    stream = encode_frame(status % 1) + encode_frame(status % 2)
    writer.write(stream[:5])
    await writer.drain()
    writer.write(stream[5:] + encode_frame(status % 3))
    assert await asyncio.wait_for(reader.readexactly(3), 5) == ACK * 3
    await until(lambda: counters.frames == 3)
    writer.close()


async def test_a_framed_non_message_is_acked_but_counted(
    bare: tuple[int, BareCounters], until: Until
) -> None:
    port, counters = bare
    reader, writer = await _link(port)
    writer.write(encode_frame(b"[1, 2]"))
    assert await asyncio.wait_for(reader.readexactly(1), 5) == ACK
    await until(lambda: counters.bad_json == 1)
    writer.close()


async def test_eot_closes_the_link(bare: tuple[int, BareCounters]) -> None:
    port, _counters = bare
    reader, writer = await _link(port)
    writer.write(Control.EOT.byte)
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
