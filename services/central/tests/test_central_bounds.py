"""The central's caps (docs/reliability.md): what a hostile or broken peer may hold,
and that a refusal is clean and counted."""

from __future__ import annotations

import asyncio
import contextlib

from evcentral.app import Central
from evproto.framing import Control, encode_frame
from evproto.messages import ErrorReply
from evproto.states import CpState


def sample(central: Central, name: str, **labels: str) -> float:
    return central.metrics.registry.get_sample_value(f"evcharging_central_{name}", labels) or 0.0


async def _closed_by_the_central(reader: asyncio.StreamReader, within: float = 5.0) -> bool:
    with contextlib.suppress(ConnectionError):
        async with asyncio.timeout(within):
            while await reader.read(65536):
                pass
    return True


async def test_a_flood_of_bad_frames_spends_the_error_budget_and_closes_that_link_only(
    centrals, monitors, new_id, wait_until
) -> None:
    central: Central = await centrals.start(link_error_budget=5, link_error_window=60.0)
    good, bad = new_id("CP"), new_id("CP")
    await monitors.online(central, good)
    flooder = monitors(bad, central.monitor_port)
    assert (await flooder.register()).accepted
    assert flooder.conn is not None and flooder.conn.transport is not None
    # 1,000 bad frames in one write: the central reads no further than its budget
    flooder.conn.transport.write(encode_frame(b"not json") * 1000)

    await wait_until(lambda: flooder.conn is not None and flooder.conn.closed, what="closed")
    assert sample(central, "protocol_errors_total", kind="error_budget") == 1
    assert sample(central, "protocol_errors_total", kind="malformed") == 6  # budget + 1
    assert central.registry.state_of(bad) is CpState.DISCONNECTED
    assert central.registry.state_of(good) is CpState.ACTIVE
    # one error reply waited for the flooder's ACK, and nothing piled up behind it
    replies = 0
    with contextlib.suppress(Exception):
        while isinstance(await flooder.conn.recv(timeout=0.1), ErrorReply):
            replies += 1
    assert replies <= 2


async def test_a_peer_below_the_budget_keeps_its_link(
    centrals, monitors, new_id, wait_until
) -> None:
    central: Central = await centrals.start(link_error_budget=5, link_error_window=60.0)
    cp_id = new_id("CP")
    monitor = monitors(cp_id, central.monitor_port)
    assert (await monitor.register()).accepted
    assert monitor.conn is not None and monitor.conn.transport is not None
    for _ in range(5):
        monitor.conn.transport.write(encode_frame(b"not json"))
        reply = await monitor.recv()
        assert isinstance(reply, ErrorReply) and reply.code == "malformed"
    assert not monitor.conn.closed
    assert sample(central, "protocol_errors_total", kind="error_budget") == 0


async def test_unauthenticated_connections_are_capped_in_all_and_per_address(
    centrals, monitors, new_id, wait_until
) -> None:
    central: Central = await centrals.start(max_pending_monitors=50, max_pending_per_address=3)
    held = [await asyncio.open_connection("127.0.0.1", central.monitor_port) for _ in range(3)]
    await wait_until(lambda: central.monitors.pending == 3, what="three pending")
    assert sample(central, "pending_monitor_connections") == 3

    reader, writer = await asyncio.open_connection("127.0.0.1", central.monitor_port)
    writer.write(Control.ENQ.byte)
    assert await _closed_by_the_central(reader)  # refused before anything is read
    assert sample(central, "connections_capped_total", reason="pending_per_address") == 1

    for _reader, held_writer in held:
        held_writer.close()
    await wait_until(lambda: central.monitors.pending == 0, what="the held ones gone")
    cp_id = new_id("CP")
    await monitors.online(central, cp_id)  # authenticated links do not count
    assert central.monitors.pending == 0


async def test_event_streams_are_capped_with_503(centrals, http) -> None:
    central: Central = await centrals.start(max_event_clients=2)
    url = f"http://127.0.0.1:{central.http_port}/api/events"
    viewer = {"Authorization": "Bearer view-token"}
    async with contextlib.AsyncExitStack() as streams:
        for _ in range(2):
            response = await streams.enter_async_context(http.session.get(url, headers=viewer))
            assert response.status == 200
            await response.content.readuntil(b"\n\n")
        async with http.session.get(url, headers=viewer) as refused:
            assert refused.status == 503
            assert "too many event streams" in (await refused.json())["error"]
    assert sample(central, "connections_capped_total", reason="event_clients") == 1


async def test_a_client_that_sends_no_complete_request_is_closed(centrals) -> None:
    central: Central = await centrals.start(http_idle_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", central.http_port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    assert await _closed_by_the_central(reader, within=5.0)
    writer.close()


async def test_a_flood_of_bad_logins_is_counted_but_journaled_once(
    central: Central, monitors, new_id, wait_until
) -> None:
    cp_id = new_id("CP")
    await monitors(cp_id, central.monitor_port).register()
    for _ in range(20):
        intruder = monitors(cp_id, central.monitor_port)
        assert not (await intruder.login("00" * 32)).accepted
        await intruder.close()
    refused = sample(central, "access_refused_total", door="login", reason="bad_credentials")
    assert refused == 20
    lines = [e for e in central.journal.recent if "login as" in e.message]
    assert len(lines) == 1  # the dashboard's log keeps the operator's other events
