"""The control socket of an engine running in-process: bad requests are answered,
counted and survived; a socket is never taken over from a live engine."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import pytest
from evengine.control import ControlAnswer, ControlCommand
from evengine.ctl import send_command
from evengine.engine import Engine
from evengine.settings import EngineSettings
from evproto.errors import ConfigError

pytestmark = pytest.mark.slow


async def raw_request(path: str, payload: bytes, *, close_write: bool = False) -> ControlAnswer:
    reader, writer = await asyncio.open_unix_connection(path)
    writer.write(payload)
    if close_write:
        writer.write_eof()
    await writer.drain()
    line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    return ControlAnswer.decode(line)


def control_errors(engine: Engine) -> float:
    value = engine.metrics.registry.get_sample_value(
        "evcharging_engine_protocol_errors_total", {"kind": "control_request"}
    )
    return float(value or 0)


async def test_bad_control_requests_get_a_reason_and_the_engine_serves_on(
    engine_in_process: Any,
) -> None:
    running = await engine_in_process()
    path = running.engine.settings.control_socket
    garbage = await raw_request(path, b"\x00\x01 hello\n")
    assert not garbage.ok and "one JSON line" in garbage.message
    unknown = await raw_request(path, b'{"command": "reboot"}\n')
    assert not unknown.ok and "unknown command 'reboot'" in unknown.message
    oversized = await raw_request(path, b"x" * 5000 + b"\n")
    assert not oversized.ok and "longer than 1024 bytes" in oversized.message
    unfinished = await raw_request(path, b'{"command": "ko"}', close_write=True)
    assert not unfinished.ok and "newline" in unfinished.message
    assert control_errors(running.engine) == 4
    status = await asyncio.to_thread(send_command, path, ControlCommand.STATUS)
    assert status.ok and status.status is not None
    assert status.status["cp_id"] == running.cp_id


async def test_a_live_engine_keeps_its_socket_and_a_stale_one_is_replaced(
    engine_in_process: Any, kafka_settings: Any, short_dir: Path
) -> None:
    running = await engine_in_process()
    taken = running.engine.settings.control_socket
    intruder = Engine(
        EngineSettings(cp_id="CP-Eintruder", kafka=kafka_settings.bootstrap, listen="127.0.0.1:0",
                       control_socket=taken, console="off"),
        console=False,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="another engine is listening there"):
        await asyncio.wait_for(intruder.serve(asyncio.Event()), 20)
    still = await asyncio.to_thread(send_command, taken, ControlCommand.STATUS)
    assert still.status is not None and still.status["cp_id"] == running.cp_id

    stale = short_dir / "stale.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(stale))  # bound, never listening: what a killed engine leaves
    replacement = await engine_in_process(control_socket=str(stale))
    answer = await asyncio.to_thread(send_command, str(stale), ControlCommand.STATUS)
    assert answer.ok and answer.status is not None
    assert answer.status["cp_id"] == replacement.cp_id
