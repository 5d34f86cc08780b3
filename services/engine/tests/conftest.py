"""Fixtures for the engine's integration tests: the real embedded broker, engines
in-process or as processes (LocalStack command lines), and a Kafka probe that
reads one key's partition like the central or a driver would."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from evengine.control import ControlCommand
from evengine.ctl import send_command
from evengine.engine import Engine
from evengine.settings import EngineSettings
from evproto.errors import EvError
from evproto.kafka import ConsumerLoop, KafkaSettings, Publisher, Record
from evproto.messages import Directive, DirectiveAction
from evproto.schema import Message, new_id
from evproto.topics import Topic, partition_for
from evstack.broker import EmbeddedBroker
from evstack.localstack import ChargingPoint, LocalStack, console_script

M = TypeVar("M", bound=Message)


def unique_cp_id() -> str:
    """A CP id no other test (of any suite sharing the broker) uses."""
    return f"CP-E{secrets.token_hex(4)}"


async def eventually(
    condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition"
) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture(name="eventually")
def eventually_fixture() -> Callable[..., Awaitable[Any]]:
    """``await eventually(condition, timeout, what)`` for tests (conftest is not importable)."""
    return eventually


@pytest.fixture
def short_dir() -> Iterator[Path]:
    """A short directory: Unix socket paths must stay under ~100 bytes."""
    path = Path(tempfile.mkdtemp(prefix="eve-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --- Kafka: a probe reading one key's partition, and a stand-in for the central -----


class KafkaProbe:
    """Collects the messages of one key from its partition of ``topic``."""

    def __init__(self, settings: KafkaSettings, topic: Topic, key: str) -> None:
        self.messages: list[Message] = []
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop = ConsumerLoop(
            settings,
            group_id=f"test-probe-{new_id()}",
            partitions={topic: [partition_for(key, topic.partitions)]},
            handler=self._collect,
            dead_letters=None,
            start="latest",
            keys=frozenset({key}),
        )

    async def _collect(self, msg: Message, _record: Record) -> None:
        self.messages.append(msg)

    async def start(self) -> KafkaProbe:
        await self._loop.assign()
        self._task = asyncio.create_task(self._loop.run(self._stop))
        return self

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._loop.close()

    def of(self, kind: type[M]) -> list[M]:
        return [m for m in self.messages if isinstance(m, kind)]

    async def first(self, kind: type[M], timeout: float = 15.0, **fields: object) -> M:
        def match() -> M | None:
            for m in self.of(kind):
                if all(getattr(m, k) == v for k, v in fields.items()):
                    return m
            return None

        found: M = await eventually(match, timeout, f"a {kind.__name__} {fields}")
        return found


ProbeFactory = Callable[..., Awaitable[KafkaProbe]]


@pytest.fixture
async def probe(kafka_settings: KafkaSettings) -> AsyncIterator[ProbeFactory]:
    """``await probe(topic, key)``; ``settings=`` for another broker than the session's."""
    probes: list[KafkaProbe] = []

    async def open_probe(
        topic: Topic, key: str, settings: KafkaSettings | None = None
    ) -> KafkaProbe:
        p = await KafkaProbe(settings or kafka_settings, topic, key).start()
        probes.append(p)
        return p

    yield open_probe
    for p in probes:
        await p.close()


@dataclass
class CentralDouble:
    """Publishes what the central would: directives keyed by CP id, and answers."""

    publisher: Publisher

    async def send(self, topic: Topic, key: str, msg: Message) -> None:
        await asyncio.wait_for(self.publisher.publish(topic, key, msg), 15)

    async def directive(self, cp_id: str, action: DirectiveAction, **fields: Any) -> Directive:
        msg = Directive(
            directive_id=new_id(), cp_id=cp_id, action=action, sent_at=time.time(), **fields
        )
        await self.send(Topic.DIRECTIVES, cp_id, msg)
        return msg

    async def start(self, cp_id: str, session_id: str, **fields: Any) -> Directive:
        base: dict[str, Any] = {"session_id": session_id, "driver_id": "D1", "price": 0.5}
        return await self.directive(cp_id, DirectiveAction.START, **{**base, **fields})


@pytest.fixture
async def central(kafka_settings: KafkaSettings) -> AsyncIterator[CentralDouble]:
    publisher = Publisher(kafka_settings)
    await publisher.start()
    yield CentralDouble(publisher)
    await publisher.close(5)


# --- engines in-process ----------------------------------------------------------------


@dataclass
class RunningEngine:
    engine: Engine
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def cp_id(self) -> str:
        return self.engine.cp_id

    async def shut_down(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


EngineFactory = Callable[..., Awaitable[RunningEngine]]


@pytest.fixture
async def engine_in_process(
    kafka_settings: KafkaSettings, short_dir: Path
) -> AsyncIterator[EngineFactory]:
    """Start an Engine in this event loop (36 kW: 0.01 kWh a second; plug at once)."""
    running: list[RunningEngine] = []

    async def start(**overrides: Any) -> RunningEngine:
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
        stop = asyncio.Event()
        task = asyncio.create_task(engine.serve(stop))
        await eventually(lambda: engine.ready.is_set() or task.done(), 20, "the engine ready")
        if task.done():
            task.result()  # raises what went wrong
        handle = RunningEngine(engine, stop, task)
        running.append(handle)
        return handle

    yield start
    for handle in running:
        if not handle.task.done():
            await handle.shut_down()


# --- engines as processes (the command line of LocalStack / the chart) -----------------


@dataclass
class EngineProcess:
    cp: ChargingPoint
    extra: list[str] = field(default_factory=list)

    @property
    def cp_id(self) -> str:
        return self.cp.cp_id

    @property
    def socket(self) -> str:
        return str(self.cp.control_socket)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [console_script("evengine"), "ctl", *args, "--control-socket", self.socket],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def log(self) -> str:
        return self.cp.engine.log_text()


def wait_ready(path: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the engine at ``path`` answers and reads its directives."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            answer = send_command(path, ControlCommand.STATUS, timeout=2.0)
            if answer.status and answer.status["broker_up"]:
                return answer.status
        except EvError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"no engine ready on {path} within {timeout}s")
        time.sleep(0.1)


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
