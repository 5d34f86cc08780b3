"""Directives from the central reach the engine from the moment its monitor can connect.

A new engine's group has no committed offsets, so its reader starts at the end of
the topic ("latest") as it is when the reader is assigned. Until then the monitor
port stays closed: a monitor could otherwise make the CP ACTIVE at the central,
and a START sent right then would be skipped.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
from evproto.kafka import KafkaSettings, Publisher
from evproto.states import CpState
from evstack.broker import EmbeddedBroker, free_port

sys.path.insert(0, str(Path(__file__).parent))
from engine_harness import CentralDouble, unique_cp_id

pytestmark = pytest.mark.slow


async def _monitor_connects(port: int) -> bool:
    """What the CP's monitor does first: open the engine's port (refused = not yet)."""
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.close()
    await writer.wait_closed()
    return True


async def test_an_engine_that_cannot_read_its_directives_keeps_its_monitor_out(
    engine_in_process: Any, eventually: Any
) -> None:
    """No broker: the engine serves no monitor, and a stop then ends it cleanly."""
    port = free_port()
    running = await engine_in_process(
        kafka=f"127.0.0.1:{free_port()}", listen=f"127.0.0.1:{port}", wait=False
    )
    stats = running.engine.kafka_stats
    await eventually(lambda: stats.broker_errors > 0, 20, "the engine to find no broker")
    with pytest.raises(ConnectionRefusedError):
        await _monitor_connects(port)
    await running.shut_down()  # raises what went wrong
    assert not running.engine.ready.is_set()


async def test_a_start_sent_as_soon_as_the_monitor_can_connect_is_obeyed(
    own_broker: EmbeddedBroker, engine_in_process: Any, eventually: Any
) -> None:
    """The broker comes up after the engine: the START sent as soon as the monitor
    port opens is obeyed, not skipped by a reader still backing off."""
    cp_id, port = unique_cp_id(), free_port()
    running = await engine_in_process(
        cp_id=cp_id, kafka=own_broker.bootstrap, listen=f"127.0.0.1:{port}", wait=False
    )
    await asyncio.to_thread(own_broker.start)
    publisher = Publisher(KafkaSettings(own_broker.bootstrap, client_id="tests"))
    await publisher.start()
    try:
        # as often as a monitor retrying at once would: the first moment the port is open
        await eventually(lambda: _monitor_connects(port), 30, "the monitor port open", poll=0.01)
        await CentralDouble(publisher).start(cp_id, "S-first")
        status = await eventually(
            lambda: running.engine.status().session_id == "S-first" and running.engine.status(),
            20,
            "the engine supplying S-first",
        )
        assert status.state is CpState.SUPPLYING
    finally:
        await publisher.close(5)
