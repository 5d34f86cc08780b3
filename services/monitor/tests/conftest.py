"""Fixtures for the monitor's tests: fake engine and central (real TCP servers
speaking the real framing), in-process monitors and ``evmonitor`` processes.

The helpers live beside this file (``monitor_fakes``, ``monitor_rig``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

# --import-mode=importlib puts no test folder on sys.path; the helper modules
# beside this file (monitor_*.py) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from evproto.framing import encode_frame
from monitor_fakes import FakeCentral, FakeEngine, SilentServer
from monitor_rig import MonitorProcess, Rig


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    fake = FakeEngine()
    await fake.start()
    yield fake
    await fake.kill()


@pytest.fixture
async def central() -> AsyncIterator[FakeCentral]:
    fake = FakeCentral()
    await fake.start()
    yield fake
    await fake.kill()


@pytest.fixture
async def silent_server() -> AsyncIterator[Callable[..., Awaitable[SilentServer]]]:
    """``await silent_server(handshake=...)``: a peer that accepts and never answers."""
    made: list[SilentServer] = []

    async def start(*, handshake: bool) -> SilentServer:
        made.append(SilentServer(handshake=handshake))
        await made[-1].start()
        return made[-1]

    yield start
    for server in made:
        await server.kill()


@pytest.fixture
async def rig(engine: FakeEngine, central: FakeCentral, tmp_path: Path) -> AsyncIterator[Rig]:
    """Everything an in-process monitor test needs; its monitors are stopped at teardown."""
    made = Rig(engine, central, tmp_path / "state")
    yield made
    for handle in made.running:
        if not handle.task.done():
            await handle.shutdown()


@pytest.fixture
async def spawn_monitor(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[MonitorProcess]]]:
    """``await spawn_monitor(*flags)``: the installed ``evmonitor`` script as a process,
    started like LocalStack starts it; killed at teardown if still running."""
    started: list[MonitorProcess] = []

    async def spawn(*flags: str, env: dict[str, str] | None = None) -> MonitorProcess:
        log_path = tmp_path / f"monitor-{len(started)}.log"
        script = Path(sys.executable).parent / "evmonitor"
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith("EV_")}
        with open(log_path, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                str(script), *flags,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                env={**clean_env, "PYTHONUNBUFFERED": "1", **(env or {})},
            )  # fmt: skip
        started.append(MonitorProcess(proc, log_path))
        return started[-1]

    yield spawn
    for process in started:
        if process.proc.returncode is None:
            process.proc.kill()
            await process.proc.wait()


@pytest.fixture
def garbage() -> bytes:
    """Every kind of bad input at once: stray bytes, a bad LRC, not JSON, unknown type,
    a message of a known type with a wrong field."""
    bad_lrc = encode_frame(b'{"type":"status"}')[:-1] + b"\x00"
    return (
        b"\x00\x01garbage\xff"
        + bad_lrc
        + encode_frame(b"not json at all")
        + encode_frame(b'{"type":"no_such_type"}')
        + encode_frame(b'{"type":"health_answer","seq":"x"}')
    )
