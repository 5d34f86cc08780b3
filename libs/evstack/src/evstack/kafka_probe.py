"""What tests read and write on Kafka besides the services: the one Kafka probe.

- :class:`KafkaProbe` reads the partitions of some keys (or every partition) of
  some topics from where they end now, keeps what arrives, and publishes like a
  real peer; :meth:`KafkaProbe.wait_for` waits for a message with a deadline.
- :func:`produce_raw` / :func:`produce_records` write bytes no evproto publisher
  would (poison records).
- :func:`read_topics` reads whole topics to their ends (the e2e ledger).
- :func:`skip_to_the_end` commits, as consumer groups, the end of a key's
  partitions: what anyone on the broker can do to a reader that trusts its group.

The raw reads and writes are the one place outside evproto's Kafka modules
allowed to use ``confluent_kafka`` (an import-linter contract names it).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka import Message as KafkaRecord
from confluent_kafka.admin import AdminClient
from evproto.errors import MessageError
from evproto.kafka import ConsumerLoop, KafkaSettings, Publisher, Record
from evproto.messages import CHANNELS, Sealed
from evproto.schema import Message, decode_message
from evproto.topics import Topic, partition_for

from evstack.waiting import DEFAULT_TIMEOUT, eventually

__all__ = [
    "KafkaProbe",
    "Opener",
    "Prover",
    "TopicContents",
    "produce_raw",
    "produce_records",
    "read_topics",
]

M = TypeVar("M", bound=Message)
# What a test holding its peers' keys does to records (evproto.proofs): prove what it
# publishes as the real sender would, open what the central sealed for a driver
# (raises MessageError when it cannot).
Prover = Callable[[Message], Message]
Opener = Callable[[Sealed, Topic], Message]

_READ_TIMEOUT_S = 20.0


class KafkaProbe:
    """Reads the partitions of ``keys`` (None: all) of ``topics``; keeps what arrives."""

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Iterable[Topic],
        keys: frozenset[str] | None = None,
        start: str = "latest",
        *,
        prove: Prover | None = None,
        open_sealed: Opener | None = None,
    ) -> None:
        self.settings = settings
        self._prove = prove
        self._open = open_sealed
        self.received: list[Message] = []
        self.records: list[Record] = []
        parts: dict[Topic, list[int] | None] = {
            t: (None if keys is None else sorted({partition_for(k, t.partitions) for k in keys}))
            for t in topics
        }
        self.publisher = Publisher(settings)
        self._consumer = ConsumerLoop(
            settings,
            group_id=f"test-probe-{uuid.uuid4().hex[:8]}",
            partitions=parts,
            handler=self._on,
            dead_letters=None,
            start=start,
            keys=keys,
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _on(self, msg: Message, record: Record) -> None:
        if isinstance(msg, Sealed) and self._open is not None:
            msg = self._open(msg, record.topic)
        self.received.append(msg)
        self.records.append(record)

    async def start(self) -> KafkaProbe:
        """Assigned (at the end, by default) when this returns: nothing later is missed."""
        await self.publisher.start()
        await self._consumer.assign()
        self._task = asyncio.create_task(self._consumer.run(self._stop))
        return self

    async def publish(self, topic: Topic, key: str, msg: Message) -> None:
        """Publish (proven, when the probe proves) and wait for the broker's acknowledgement."""
        if self._prove is not None:
            msg = self._prove(msg)
        await asyncio.wait_for(self.publisher.publish(topic, key, msg), DEFAULT_TIMEOUT)

    def of(self, kind: type[M], **fields: Any) -> list[M]:
        return [
            m
            for m in self.received
            if isinstance(m, kind) and all(getattr(m, k) == v for k, v in fields.items())
        ]

    async def wait_for(self, kind: type[M], timeout: float = DEFAULT_TIMEOUT, **fields: Any) -> M:
        """The first ``kind`` message with these field values."""
        found = await eventually(
            lambda: self.of(kind, **fields), timeout, f"a {kind.__name__} {fields}"
        )
        return found[0]

    async def close(self) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        await self._consumer.close()
        await self.publisher.close(2.0)


def produce_raw(settings: KafkaSettings, topic: Topic, key: str, values: Iterable[bytes]) -> None:
    """Write ``values`` as they are to ``key``'s partition of ``topic`` (blocking)."""
    remaining = produce_records(settings, ((topic, key, value) for value in values))
    assert remaining == 0, f"{remaining} raw records not delivered"


def skip_to_the_end(
    settings: KafkaSettings, topics: Iterable[Topic], key: str, groups: Iterable[str] = ()
) -> list[str]:
    """Commit the end of ``key``'s partition of each of ``topics`` in ``groups`` and in
    every group the broker lists whose name starts with ``evdriver.``; the groups moved."""
    admin = AdminClient(settings.common())
    listed = admin.list_consumer_groups(request_timeout=5).result(timeout=10)
    names = {*groups, *(g.group_id for g in listed.valid if g.group_id.startswith("evdriver."))}
    probe = Consumer(settings.consumer(f"mallory.{uuid.uuid4().hex[:8]}"))
    try:
        ends = []
        for topic in topics:
            tp = TopicPartition(topic.value, partition_for(key, topic.partitions))
            ends.append(TopicPartition(tp.topic, tp.partition, probe.get_watermark_offsets(tp)[1]))
    finally:
        probe.close()
    for name in sorted(names):
        mover = Consumer(settings.consumer(name))
        try:
            mover.commit(offsets=ends, asynchronous=False)
        finally:
            mover.close()
    return sorted(names)


def produce_records(
    settings: KafkaSettings,
    records: Iterable[tuple[Topic, str, bytes | None]],
    flush_timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Write each (topic, key, value) as it is to the key's partition (blocking; a None
    value is a null record); returns how many the broker did not confirm in time."""
    producer = Producer(settings.producer())
    for n, (topic, key, value) in enumerate(records):
        while True:
            try:
                producer.produce(
                    topic.value,
                    value=value,
                    key=key.encode(),
                    partition=partition_for(key, topic.partitions),
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                producer.poll(0.1)
        if n % 500 == 0:
            producer.poll(0)
    remaining: int = producer.flush(flush_timeout)
    return remaining


@dataclass(slots=True)
class TopicContents:
    messages: dict[Topic, list[Message]] = field(default_factory=dict)
    undecodable: list[str] = field(default_factory=list)  # "topic[partition]@offset: why"
    # what no driver accepts: records on ev.driver.updates not sealed by the central
    # (an attacker's), kept apart when the reader opens sealed records
    unsealed: list[Message] = field(default_factory=list)
    missing: list[Topic] = field(default_factory=list)  # topics the broker does not have

    def of(self, topic: Topic) -> list[Message]:
        return self.messages.get(topic, [])


def read_topics(
    bootstrap: str, topics: tuple[Topic, ...], open_sealed: Opener | None = None
) -> TopicContents:
    """Whole topics, every partition from the beginning, as evproto messages (blocking).

    A throwaway consumer: manual assignment (no group join, nothing committed),
    read until every partition reports its end. (The end comes from the fetch
    answers: the embedded broker's ListOffsets answer lags behind the records.)
    Records that do not decode as a message of their topic are returned apart,
    as findings; records sealed for a driver are opened with ``open_sealed``.
    """
    settings = KafkaSettings(bootstrap, client_id="e2e-ledger")
    consumer = Consumer(
        {**settings.consumer(f"e2e-ledger-{uuid.uuid4().hex[:8]}"), "enable.partition.eof": True}
    )
    contents = TopicContents({topic: [] for topic in topics})
    existing = consumer.list_topics(timeout=10.0).topics
    contents.missing = [t for t in topics if t.value not in existing]
    unread = {(t.value, p) for t in topics if t.value in existing for p in range(t.partitions)}
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for (t, p) in unread])
    deadline = time.monotonic() + _READ_TIMEOUT_S
    try:
        while unread:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read the topics to their ends: {unread} left")
            for record in consumer.consume(500, 0.5):
                where = (record.topic() or "", record.partition() or 0)
                err = record.error()
                if err is None:
                    _decode(record, contents, open_sealed)
                elif err.code() == KafkaError._PARTITION_EOF:
                    unread.discard(where)
                else:
                    raise AssertionError(f"reading the topics failed: {err.str()}")
    finally:
        consumer.close()
    return contents


def _decode(record: KafkaRecord, contents: TopicContents, open_sealed: Opener | None) -> None:
    topic = Topic(record.topic() or "")
    try:
        message = decode_message(record.value() or b"", CHANNELS[topic])
        if open_sealed is not None and topic is Topic.DRIVER_UPDATES:
            if not isinstance(message, Sealed):
                contents.unsealed.append(message)
                return
            message = open_sealed(message, topic)
        elif isinstance(message, Sealed) and open_sealed is not None:
            message = open_sealed(message, topic)
    except MessageError as exc:
        where = f"{topic.value}[{record.partition()}]@{record.offset()}"
        contents.undecodable.append(f"{where}: {exc.message}")
    else:
        contents.messages[topic].append(message)
