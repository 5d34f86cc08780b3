"""Fixtures for the central's tests: an in-process central on the embedded broker,
fake monitors speaking the real framed protocol, fake engines and drivers on Kafka.

Helpers are handed out by fixtures (tests run with --import-mode=importlib and
cannot import this file).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from confluent_kafka import Consumer, TopicPartition
from evcentral.app import Central
from evcentral.kafka_io import CONSUMED_TOPICS
from evcentral.records import SessionRecord, SessionStatus
from evcentral.settings import CentralSettings
from evproto.auth import client_proof, registration_proof, unseal_secret
from evproto.connection import FramedConnection
from evproto.kafka import ConsumerLoop, KafkaSettings, Publisher, Record
from evproto.messages import (
    CHANNELS,
    Authenticate,
    AuthResult,
    Challenge,
    ChallengeResponse,
    Origin,
    Outcome,
    Register,
    Status,
    SupplyRequest,
    SupplyStarted,
    Telemetry,
    Ticket,
)
from evproto.schema import Message
from evproto.states import CpState, Health
from evproto.topics import Topic, partition_for
from prometheus_client import CollectorRegistry

OPERATOR_TOKEN = "op-token"
VIEWER_TOKEN = "view-token"
REGISTRATION_TOKEN = "reg-token"


async def eventually(
    predicate: Callable[[], Any], timeout: float = 10.0, what: str = "a condition"
) -> Any:
    """Poll ``predicate`` (plain or async) until it returns something truthy, or fail
    at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[Any]]:
    return eventually


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def new_id() -> Callable[[str], str]:
    return unique


# --- messages as drivers and engines send them --------------------------------------


class SupplyMessages:
    """Builders for the Kafka messages of a supply; energy grows ``kwh_per_seq`` a second."""

    def __init__(self, kwh_per_seq: float = 0.01, price: float = 0.5) -> None:
        self.kwh_per_seq = kwh_per_seq
        self.price = price

    def request(self, driver_id: str, cp_id: str | None, **fields: Any) -> SupplyRequest:
        values: dict[str, Any] = {
            "request_id": unique("request"),
            "requester_id": driver_id,
            "origin": Origin.DRIVER,
            "cp_id": cp_id,
            "sent_at": time.time(),
        }
        values.update(fields)
        return SupplyRequest(**values)

    def started(self, session_id: str, cp_id: str, driver_id: str) -> SupplyStarted:
        return SupplyStarted(
            session_id=session_id, cp_id=cp_id, driver_id=driver_id, sent_at=time.time()
        )

    def telemetry(self, session_id: str, cp_id: str, driver_id: str, seq: int) -> Telemetry:
        kwh = seq * self.kwh_per_seq
        return Telemetry(
            session_id=session_id,
            cp_id=cp_id,
            driver_id=driver_id,
            seq=seq,
            kwh=kwh,
            eur=kwh * self.price,
            power_kw=22.0,
            elapsed_s=float(seq),
            sent_at=time.time(),
        )

    def ticket(
        self,
        session_id: str,
        cp_id: str,
        driver_id: str,
        *,
        seq: int,
        outcome: Outcome = Outcome.COMPLETED,
        reason: str = "",
        kwh: float | None = None,
    ) -> Ticket:
        now = time.time()
        kwh = seq * self.kwh_per_seq if kwh is None else kwh
        return Ticket(
            session_id=session_id,
            cp_id=cp_id,
            driver_id=driver_id,
            last_seq=seq,
            kwh=kwh,
            eur=kwh * self.price,
            price=self.price,
            started_at=now - seq,
            ended_at=now,
            outcome=outcome,
            reason=reason,
        )


@pytest.fixture
def messages() -> Callable[..., SupplyMessages]:
    return SupplyMessages


# --- the central -------------------------------------------------------------------


def _commit_at_end(settings: KafkaSettings, group: str) -> None:
    """Start a new consumer group at the end of the topics, so a test sees only its records."""
    consumer = Consumer(settings.consumer(group))
    try:
        offsets = []
        for topic in CONSUMED_TOPICS:
            for p in range(topic.partitions):
                _low, high = consumer.get_watermark_offsets(
                    TopicPartition(topic.value, p), timeout=10
                )
                offsets.append(TopicPartition(topic.value, p, high))
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


class CentralHarness:
    """Starts centrals in this test's event loop; each on its own metrics registry."""

    def __init__(self, tmp_path: Path, kafka: KafkaSettings) -> None:
        self.tmp_path = tmp_path
        self.kafka = kafka
        self.group = unique("evcentral-test")
        self._group_ready = False
        self.running: list[Central] = []

    def settings(self, **overrides: Any) -> CentralSettings:
        values: dict[str, Any] = {
            "kafka": self.kafka.bootstrap,
            "db": str(self.tmp_path / "central.db"),
            "listen": "127.0.0.1:0",
            "http": "127.0.0.1:0",
            "operator_token": OPERATOR_TOKEN,
            "viewer_token": VIEWER_TOKEN,
            "registration_token": REGISTRATION_TOKEN,
            "heartbeat_interval": 0.5,
            "missed_heartbeats": 4,
            "abort_grace": 1.0,
            "handshake_timeout": 3.0,
            "create_topics": False,
        }
        values.update(overrides)
        return CentralSettings(**values)

    async def start(self, *, wait_consuming: bool = True, **overrides: Any) -> Central:
        if wait_consuming and not self._group_ready:
            await asyncio.to_thread(_commit_at_end, self.kafka, self.group)
            self._group_ready = True
        central = Central(
            self.settings(**overrides),
            metrics_registry=CollectorRegistry(),
            consumer_group=self.group,
        )
        await central.start()
        self.running.append(central)
        if wait_consuming:
            await eventually(lambda: central.kafka.consuming, 15, "the central to consume")
        return central

    async def stop(self, central: Central) -> None:
        if central in self.running:
            self.running.remove(central)
            await central.stop()


@pytest.fixture
async def centrals(tmp_path: Path, kafka_settings: KafkaSettings) -> AsyncIterator[CentralHarness]:
    harness = CentralHarness(tmp_path, kafka_settings)
    yield harness
    for central in list(harness.running):
        await harness.stop(central)


@pytest.fixture
async def central(centrals: CentralHarness) -> Central:
    return await centrals.start()


@pytest.fixture
async def fleet(central: Central, monitors, new_id, wait_until) -> list[str]:
    """Two registered CPs: one online, one whose monitor is gone (DISCONNECTED)."""
    online, offline = sorted([new_id("CP"), new_id("CP")])
    await monitors.online(central, online, location="North 1", price=0.4)
    gone = monitors(offline, central.monitor_port)
    assert (await gone.register(location="South 2")).accepted
    await gone.close()
    await wait_until(
        lambda: (
            central.registry.state_of(online) is CpState.ACTIVE
            and central.registry.state_of(offline) is CpState.DISCONNECTED
        ),
        what="one CP online, one offline",
    )
    return [online, offline]


# --- fake monitors (real framed TCP clients) ----------------------------------------


class FakeMonitor:
    def __init__(self, cp_id: str, port: int) -> None:
        self.cp_id = cp_id
        self.port = port
        self.secret = ""
        self.health = Health.OK
        self.conn: FramedConnection | None = None
        self._beat: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self) -> FramedConnection:
        self.conn = await FramedConnection.connect(
            "127.0.0.1", self.port, accept=CHANNELS["monitor<-central"], timeout=5.0
        )
        return self.conn

    async def _challenge(self) -> Challenge:
        conn = self.conn or await self.open()
        challenge = await conn.request(Authenticate(cp_id=self.cp_id))
        assert isinstance(challenge, Challenge), challenge
        return challenge

    async def register(
        self,
        token: str = REGISTRATION_TOKEN,
        location: str = "Test bay",
        price: float | None = None,
    ) -> AuthResult:
        challenge = await self._challenge()
        assert self.conn is not None
        proof = registration_proof(token, challenge.nonce, self.cp_id)
        result = await self.conn.request(
            Register(cp_id=self.cp_id, location=location, proof=proof, price=price)
        )
        assert isinstance(result, AuthResult), result
        if result.accepted:
            self.secret = unseal_secret(result.sealed_secret, token, challenge.nonce, self.cp_id)
        return result

    async def login(self, secret: str | None = None) -> AuthResult:
        challenge = await self._challenge()
        assert self.conn is not None
        proof = client_proof(secret or self.secret, challenge.nonce, self.cp_id)
        result = await self.conn.request(ChallengeResponse(cp_id=self.cp_id, proof=proof))
        assert isinstance(result, AuthResult), result
        return result

    async def status(self, health: Health = Health.OK, reason: str = "") -> None:
        self.health = health
        assert self.conn is not None
        await self.conn.send(Status(cp_id=self.cp_id, health=health, reason=reason))

    def heartbeat(self, interval: float = 0.25) -> None:
        """Report the current health every ``interval`` in the background, like a monitor."""

        async def beat() -> None:
            # a flag, not only cancel(): Python 3.11's wait_for (inside send) can
            # swallow a cancellation that lands as the ACK arrives
            while not self._closing:
                await self.status(self.health)
                await asyncio.sleep(interval)

        self._beat = asyncio.create_task(beat())

    async def recv(self, timeout: float = 5.0) -> Message:
        assert self.conn is not None
        return await self.conn.recv(timeout)

    async def close(self) -> None:
        self._closing = True
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._beat, 5)
        if self.conn is not None:
            await self.conn.close()


class MonitorFactory:
    def __init__(self) -> None:
        self.made: list[FakeMonitor] = []

    def __call__(self, cp_id: str, port: int) -> FakeMonitor:
        monitor = FakeMonitor(cp_id, port)
        self.made.append(monitor)
        return monitor

    async def online(self, central: Central, cp_id: str, **register: Any) -> FakeMonitor:
        """A registered CP with a live, healthy monitor sending heartbeats."""
        monitor = self(cp_id, central.monitor_port)
        result = await monitor.register(**register)
        assert result.accepted, result.reason
        await monitor.status(Health.OK)
        monitor.heartbeat()
        return monitor


@pytest.fixture
async def monitors() -> AsyncIterator[MonitorFactory]:
    factory = MonitorFactory()
    yield factory
    for monitor in factory.made:
        with contextlib.suppress(Exception):
            await monitor.close()


# --- fake engines and drivers (real Kafka clients) ------------------------------------


class KafkaPeer:
    """Reads the partitions of its keys, keeps what arrives, publishes like a real peer."""

    def __init__(
        self,
        settings: KafkaSettings,
        topics: list[Topic],
        keys: frozenset[str] | None,
        start: str = "latest",
    ) -> None:
        self.settings = settings
        self.received: list[Message] = []
        self.records: list[Record] = []
        parts: dict[Topic, list[int] | None] = {
            t: (None if keys is None else sorted({partition_for(k, t.partitions) for k in keys}))
            for t in topics
        }
        self.publisher = Publisher(settings)
        self._consumer = ConsumerLoop(
            settings,
            group_id=unique("peer"),
            partitions=parts,
            handler=self._on,
            dead_letters=None,
            start=start,
            keys=keys,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _on(self, msg: Message, record: Record) -> None:
        self.received.append(msg)
        self.records.append(record)

    async def start(self) -> KafkaPeer:
        await self.publisher.start()
        await self._consumer.assign()
        self._task = asyncio.create_task(self._consumer.run(self._stop))
        return self

    async def publish(self, topic: Topic, key: str, msg: Message) -> None:
        await self.publisher.publish(topic, key, msg)

    def of(self, kind: type[Message], **fields: Any) -> list[Any]:
        return [
            m
            for m in self.received
            if isinstance(m, kind) and all(getattr(m, k) == v for k, v in fields.items())
        ]

    async def wait_for(self, kind: type[Message], timeout: float = 10.0, **fields: Any) -> Any:
        found = await eventually(
            lambda: self.of(kind, **fields), timeout, f"{kind.__name__} {fields}"
        )
        return found[0]

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._consumer.close()
        await self.publisher.close(2.0)


class PeerFactory:
    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self.made: list[KafkaPeer] = []

    async def _make(
        self, topics: list[Topic], keys: frozenset[str] | None, start: str = "latest"
    ) -> KafkaPeer:
        peer = KafkaPeer(self.settings, topics, keys, start)
        self.made.append(peer)
        return await peer.start()

    async def driver(self, driver_id: str) -> KafkaPeer:
        return await self._make(
            [Topic.SUPPLY_RESPONSES, Topic.DRIVER_UPDATES], frozenset({driver_id})
        )

    async def engine(self, cp_id: str) -> KafkaPeer:
        """Reads its directives and the answers to its manual requests (keyed by CP id)."""
        return await self._make([Topic.DIRECTIVES, Topic.SUPPLY_RESPONSES], frozenset({cp_id}))

    async def watcher(
        self, topic: Topic, keys: frozenset[str] | None = None, start: str = "latest"
    ) -> KafkaPeer:
        return await self._make([topic], keys, start)


@pytest.fixture
async def peers(kafka_settings: KafkaSettings) -> AsyncIterator[PeerFactory]:
    factory = PeerFactory(kafka_settings)
    yield factory
    for peer in factory.made:
        with contextlib.suppress(Exception):
            await peer.close()


# --- HTTP ---------------------------------------------------------------------------


class Http:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(
        self,
        central: Central,
        method: str,
        path: str,
        *,
        token: str | None = OPERATOR_TOKEN,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"http://127.0.0.1:{central.http_port}{path}"
        async with self.session.request(method, url, headers=headers, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield Http(session)


def _ended_session(
    session_id: str, cp_id: str, driver_id: str, outcome: Outcome, at: float
) -> SessionRecord:
    """A stored, ended session of 1.5 kWh at 0.5 €/kWh, authorized at ``at``."""
    return SessionRecord(
        session_id=session_id,
        cp_id=cp_id,
        driver_id=driver_id,
        origin=Origin.DRIVER,
        status=SessionStatus.ENDED,
        authorized_at=at,
        started_at=at + 1,
        ended_at=at + 60,
        kwh=1.5,
        eur=0.75,
        price=0.5,
        last_seq=60,
        outcome=outcome,
    )


@pytest.fixture
def ended_session() -> Callable[[str, str, str, Outcome, float], SessionRecord]:
    return _ended_session
