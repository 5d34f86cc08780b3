"""Fixtures for the engine's integration tests: the real embedded broker, engines
in-process or as processes (LocalStack command lines), and a Kafka probe that
reads one key's partition like the central or a driver would.

The helpers live beside this file (``engine_harness``).
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test folder on sys.path; the helper modules
# beside this file (engine_*.py) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from engine_harness import (
    RECORD_KEY,
    CentralDouble,
    EngineProcess,
    RunningEngine,
    proven_by_central,
    unique_cp_id,
    wait_ready,
)
from evengine.engine import Engine
from evengine.settings import EngineSettings
from evproto.kafka import KafkaSettings, Publisher
from evproto.schema import Message
from evproto.topics import Topic
from evstack.broker import EmbeddedBroker
from evstack.kafka_probe import KafkaProbe
from evstack.localstack import LocalStack
from evstack.waiting import eventually


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Awaitable[Any]]:
    """``await eventually(condition, timeout, what)`` (evstack.waiting's)."""
    return eventually


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: Unix socket paths must stay under ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="eve-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A broker of this test alone, not started: stopping or freezing it disturbs no other."""
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    yield broker
    broker.stop()


ProbeFactory = Callable[..., Awaitable[KafkaProbe]]


@pytest.fixture
def central_proof() -> Callable[[Message], Message]:
    return proven_by_central


@pytest.fixture
async def probe(kafka_settings: KafkaSettings) -> AsyncIterator[ProbeFactory]:
    """``await probe(topic, key)``: one key's partition; ``settings=`` for another broker."""
    probes: list[KafkaProbe] = []

    async def open_probe(
        topic: Topic, key: str, settings: KafkaSettings | None = None
    ) -> KafkaProbe:
        p = await KafkaProbe(settings or kafka_settings, [topic], frozenset({key})).start()
        probes.append(p)
        return p

    yield open_probe
    for p in probes:
        await p.close()


@pytest.fixture
async def central(kafka_settings: KafkaSettings) -> AsyncIterator[CentralDouble]:
    publisher = Publisher(kafka_settings)
    await publisher.start()
    yield CentralDouble(publisher)
    await publisher.close(5)


EngineFactory = Callable[..., Awaitable[RunningEngine]]


@pytest.fixture
async def engine_in_process(
    kafka_settings: KafkaSettings, short_dir: Path
) -> AsyncIterator[EngineFactory]:
    """Start an Engine in this event loop (36 kW: 0.01 kWh a second; plug at once);
    ``wait=False`` returns at once instead of once it is ready."""
    running: list[RunningEngine] = []

    async def start(*, wait: bool = True, **overrides: Any) -> RunningEngine:
        cp_id = overrides.pop("cp_id", None) or unique_cp_id()
        options: dict[str, Any] = {
            "cp_id": cp_id,
            "kafka": kafka_settings.bootstrap,
            "listen": "127.0.0.1:0",
            "control_socket": str(short_dir / f"{cp_id}.sock"),
            "console": "off",
            "plug_delay": 0.0,
            "power_kw": 36.0,
            **overrides,
        }
        engine = Engine(EngineSettings(**options), console=False)
        engine.record_key(RECORD_KEY.hex())  # what its monitor tells it
        stop = asyncio.Event()
        task = asyncio.create_task(engine.serve(stop))
        handle = RunningEngine(engine, stop, task)
        running.append(handle)
        if wait:
            await eventually(lambda: engine.ready.is_set() or task.done(), 20, "the engine ready")
            if task.done():
                task.result()  # raises what went wrong
        return handle

    yield start
    for handle in running:
        if not handle.task.done():
            await handle.shut_down()


@pytest.fixture
def engine_process(
    embedded_broker: EmbeddedBroker, short_dir: Path
) -> Iterator[Callable[..., EngineProcess]]:
    """Start ``evengine`` with LocalStack's command line, plus extra flags."""
    stack = LocalStack(short_dir, kafka_port=embedded_broker.port)
    started: list[EngineProcess] = []

    def start(*extra: str, wait: bool = True) -> EngineProcess:
        cp = stack.charging_point(secrets.randbelow(10**6) + 10**6)
        cp.engine.argv += ["--power-kw", "36", "--plug-delay", "0", *extra]
        cp.engine.start()
        proc = EngineProcess(cp, list(extra))
        started.append(proc)
        if wait:
            try:
                wait_ready(proc.socket)
            except AssertionError:
                raise AssertionError(f"engine not ready; its log:\n{proc.log()}") from None
        return proc

    yield start
    for proc in started:
        proc.cp.engine.stop()
