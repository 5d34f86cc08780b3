"""Kafka helpers: client configuration, topic creation, an asyncio publisher and
a consumer loop that validates, dead-letters poison records and commits after
the handler succeeds.

confluent-kafka is blocking; its calls run in worker threads so the services'
event loops never stall. Producers are idempotent, and every record goes to the
partition :func:`evproto.topics.partition_for` picks for its key, so consumers
that want one key read one partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka import (
    Message as KafkaRecord,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from evproto.errors import MessageError
from evproto.logs import kv
from evproto.messages import CHANNELS, DeadLetter
from evproto.schema import Message, decode_message, encode_message
from evproto.topics import Topic, partition_for

__all__ = [
    "ConsumerLoop",
    "KafkaSettings",
    "KafkaStats",
    "Publisher",
    "Record",
    "create_topics",
    "ensure_topics",
]

log = logging.getLogger("evproto.kafka")


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """How to reach the broker. Security fields are empty for a plaintext broker."""

    bootstrap: str
    client_id: str = "evcharging"
    security_protocol: str = "PLAINTEXT"  # or SSL, SASL_PLAINTEXT, SASL_SSL
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_ca_file: str = ""
    # Small session timeout: consumer groups form in seconds on the embedded broker.
    session_timeout_ms: int = 6000

    def common(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
            "socket.connection.setup.timeout.ms": 5000,
            "reconnect.backoff.ms": 200,
            "reconnect.backoff.max.ms": 5000,
            # librdkafka logs through Python logging (one format, one place to
            # silence it) instead of printing on stderr by itself.
            "logger": logging.getLogger("librdkafka"),
        }
        if self.security_protocol.startswith("SASL"):
            conf.update(
                {
                    "sasl.mechanism": self.sasl_mechanism,
                    "sasl.username": self.sasl_username,
                    "sasl.password": self.sasl_password,
                }
            )
        if self.ssl_ca_file:
            conf["ssl.ca.location"] = self.ssl_ca_file
        return conf

    def producer(self) -> dict[str, Any]:
        return {
            **self.common(),
            "enable.idempotence": True,
            "acks": "all",
            # Topics are made with their partition counts (create_topics, or Strimzi).
            # A producer asking for a missing one must not have the broker create it
            # with its default count: partition_for would then point past its end.
            "allow.auto.create.topics": False,
            "linger.ms": 2,
            # Keep retrying through a broker outage for up to 10 minutes; a record
            # that still fails is reported to the caller, who keeps it.
            "message.timeout.ms": 600_000,
        }

    def consumer(self, group_id: str) -> dict[str, Any]:
        return {
            **self.common(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self.session_timeout_ms // 3),
            "fetch.wait.max.ms": 50,
            "enable.partition.eof": False,
        }


@dataclass(slots=True)
class KafkaStats:
    """Counters a service exports as metrics; plain ints so evproto stays metric-agnostic."""

    produced: dict[str, int] = field(default_factory=dict)
    consumed: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    publish_failures: int = 0
    broker_errors: int = 0
    broker_up: bool = False

    @staticmethod
    def bump(counter: dict[str, int], topic: str) -> None:
        counter[topic] = counter.get(topic, 0) + 1


def create_topics(
    settings: KafkaSettings, topics: Iterable[Topic] = tuple(Topic), timeout: float = 15.0
) -> None:
    """Create the topics with their partition counts; existing ones are left as they are."""
    ensure_topics(settings, {t.value: t.partitions for t in topics}, timeout)


def ensure_topics(
    settings: KafkaSettings, partitions: Mapping[str, int], timeout: float = 15.0
) -> None:
    """Create topics by name and partition count unless they exist (blocking)."""
    admin = AdminClient(settings.common())
    wanted = [NewTopic(name, count, 1) for name, count in partitions.items()]
    futures = admin.create_topics(wanted, request_timeout=timeout)
    for name, fut in futures.items():
        try:
            fut.result(timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.debug("topic ready %s", kv(topic=name))


def broker_reachable(settings: KafkaSettings, timeout: float = 2.0) -> bool:
    """A metadata round trip; blocking, so call it in a thread."""
    try:
        AdminClient(settings.common()).list_topics(timeout=timeout)
    except KafkaException:
        return False
    return True


# Delivery errors that mean the producer is unusable, not the record: an idempotent
# producer whose id or sequence a broker restarted empty no longer knows.
_PRODUCER_LOST = frozenset(
    {
        KafkaError._FATAL,
        KafkaError._FENCED,
        KafkaError.PRODUCER_FENCED,
        KafkaError.UNKNOWN_PRODUCER_ID,
        KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
        KafkaError.INVALID_PRODUCER_EPOCH,
        KafkaError.INVALID_PRODUCER_ID_MAPPING,
    }
)


@dataclass(slots=True)
class _Pending:
    """A record handed to the producer and not yet confirmed by the broker."""

    topic: Topic
    key: bytes
    value: bytes
    partition: int
    done: asyncio.Future[None]
    since: float


class Publisher:
    """An idempotent producer for asyncio code.

    ``publish`` queues the record and returns a future resolved when the broker
    has it (or failed with the delivery error). A background task serves the
    delivery callbacks. Records stay in ``_pending`` until confirmed: if they
    stall while the broker answers (a broker that restarted empty no longer
    knows our producer id, and librdkafka retries that forever), or are reported
    failed because the producer itself is lost (fenced, unknown producer id), the
    producer is replaced and the pending records are sent again. Consumers are idempotent,
    so a record the old producer did deliver counts once.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        stats: KafkaStats | None = None,
        *,
        stall_seconds: float = 15.0,
    ) -> None:
        self.stats = stats or KafkaStats()
        self._settings = settings
        self._stall_seconds = stall_seconds
        self._producer = self._new_producer()
        self._generation = 0
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._last_stall_check = 0.0
        self._producer_lost = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task[None] | None = None

    def _new_producer(self) -> Producer:
        return Producer({**self._settings.producer(), "error_cb": self._on_error})

    def _on_error(self, err: KafkaError) -> None:
        self.stats.broker_errors += 1
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.stats.broker_up = False
        log.warning("kafka producer error %s", kv(error=err.str()))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._poller = asyncio.create_task(self._poll_forever(), name="kafka-producer-poll")

    async def _poll_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._producer.poll, 0.1)
            except KafkaException as exc:
                # A fatal error leaves the producer unusable for good (an idempotent
                # producer whose sequence a broker restarted empty cannot follow).
                log.warning("kafka producer failed fatally; replacing it %s", kv(error=exc))
                self._producer_lost = True
            if self._producer_lost:
                self._producer_lost = False
                await self._replace_producer()
                await asyncio.sleep(0.5)  # never a tight loop of new producers
                continue
            if self._pending:
                await self._recover_if_stalled()

    async def _recover_if_stalled(self) -> None:
        now = time.monotonic()
        oldest = next(iter(self._pending.values()))
        if now - oldest.since < self._stall_seconds:
            return
        if now - self._last_stall_check < self._stall_seconds:
            return
        self._last_stall_check = now
        if not await asyncio.to_thread(broker_reachable, self._settings, 2.0):
            return  # the broker is down: librdkafka keeps retrying, nothing to fix
        log.warning(
            "kafka producer stalled while the broker answers; replacing it %s",
            kv(pending=len(self._pending), oldest_s=f"{now - oldest.since:.0f}"),
        )
        await self._replace_producer()

    async def _replace_producer(self) -> None:
        """A new producer sends every record not yet confirmed again."""
        now = time.monotonic()
        old, self._producer = self._producer, self._new_producer()
        self._generation += 1  # the old producer's purge reports are ignored
        with contextlib.suppress(KafkaException):  # a fatally failed one may refuse
            await asyncio.to_thread(old.purge)
            await asyncio.to_thread(old.flush, 0)
        for record_id, pending in list(self._pending.items()):
            pending.since = now
            self._produce(record_id, pending)

    def publish(self, topic: Topic, key: str, msg: Message) -> asyncio.Future[None]:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        pending = _Pending(
            topic=topic,
            key=key.encode(),
            value=encode_message(msg),
            partition=partition_for(key, topic.partitions),
            done=loop.create_future(),
            since=time.monotonic(),
        )
        self._next_id += 1
        self._pending[self._next_id] = pending
        self._produce(self._next_id, pending)
        return pending.done

    def _produce(self, record_id: int, pending: _Pending) -> None:
        loop, generation = self._loop, self._generation
        assert loop is not None

        def on_delivery(err: KafkaError | None, _record: KafkaRecord) -> None:
            # librdkafka calls this from the thread that polls; hop to the loop.
            loop.call_soon_threadsafe(self._delivered, record_id, generation, err)

        while True:
            try:
                self._producer.produce(
                    pending.topic.value,
                    value=pending.value,
                    key=pending.key,
                    partition=pending.partition,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.05)  # local queue full: serve callbacks, then retry

    def _delivered(self, record_id: int, generation: int, err: KafkaError | None) -> None:
        if generation != self._generation:
            return
        if err is not None and (err.fatal() or err.code() in _PRODUCER_LOST):
            if not self._producer_lost:
                log.warning("kafka producer lost; replacing it %s", kv(error=err.str()))
            self._producer_lost = True  # the record stays pending; the new producer sends it
            return
        pending = self._pending.pop(record_id, None)
        if pending is None:
            return
        if err is None:
            self.stats.broker_up = True
            KafkaStats.bump(self.stats.produced, pending.topic.value)
            _resolve(pending.done, None)
        else:
            self.stats.publish_failures += 1
            _resolve(pending.done, KafkaException(err))

    @property
    def pending(self) -> int:
        """Records handed over and not yet confirmed by the broker."""
        return len(self._pending)

    async def flush(self, timeout: float = 10.0) -> int:
        """Wait for queued records; returns how many are still undelivered."""
        remaining: int = await asyncio.to_thread(self._producer.flush, timeout)
        return remaining

    async def close(self, timeout: float = 10.0) -> None:
        remaining = await self.flush(timeout)
        if remaining:
            log.error("kafka producer closed with undelivered records %s", kv(count=remaining))
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller


def _resolve(fut: asyncio.Future[None], exc: BaseException | None) -> None:
    if fut.done():
        return
    if exc is None:
        fut.set_result(None)
    else:
        fut.set_exception(exc)


@dataclass(frozen=True, slots=True)
class Record:
    """Where a consumed message came from."""

    topic: Topic
    partition: int
    offset: int
    key: str
    timestamp_ms: int


Handler = Callable[[Message, Record], Awaitable[None]]


class ConsumerLoop:
    """Read assigned partitions, validate, hand each message to ``handler``, commit.

    ``partitions`` maps a topic to the partitions to read (None = all of them).
    Assignment is manual (no group rebalance): positions come from the
    committed offsets of ``group_id``, else ``start`` ("earliest" or "latest",
    resolved to an explicit offset at assignment so nothing produced after
    :meth:`start` returns is missed). A record that is not a valid message for
    its topic, or whose handler raises a :class:`MessageError`, goes to the
    dead-letter topic with the reason; any other handler error is retried.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        group_id: str,
        partitions: dict[Topic, list[int] | None],
        handler: Handler,
        dead_letters: Publisher | None,
        start: str = "earliest",
        keys: frozenset[str] | None = None,
        stats: KafkaStats | None = None,
        batch: int = 500,
    ) -> None:
        self.group_id = group_id
        self.stats = stats or KafkaStats()
        self._settings = settings
        self._wanted = partitions
        self._handler = handler
        self._dead_letters = dead_letters
        self._start = start
        self._keys = keys
        self._batch = batch
        self._consumer = Consumer(
            {
                **settings.consumer(group_id),
                "error_cb": self._on_error,
                "on_commit": self._committed,
            }
        )
        self._assigned: list[TopicPartition] = []
        # next offset per partition: handled by us, and confirmed committed by the broker
        self._handled: dict[tuple[str, int], int] = {}
        self._confirmed: dict[tuple[str, int], int] = {}

    def _committed(self, err: KafkaError | None, offsets: list[TopicPartition]) -> None:
        """librdkafka's commit report (from the polling thread)."""
        if err is not None and err.code() != KafkaError._NO_OFFSET:
            # Not fatal: the records were handled and handlers are idempotent, so a
            # replay after a restart changes nothing; the next commit covers these.
            log.warning("commit failed %s", kv(group=self.group_id, error=err.str()))
            return
        for tp in offsets:
            if tp.error is None:
                # the latest report, not the highest: a broker that restarted empty
                # numbers its partitions from 0 again
                self._confirmed[(tp.topic, tp.partition)] = tp.offset

    def _on_error(self, err: KafkaError) -> None:
        self.stats.broker_errors += 1
        if err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            self.stats.broker_up = False
        log.warning("kafka consumer error %s", kv(group=self.group_id, error=err.str()))

    async def assign(self, timeout: float = 10.0) -> None:
        """Resolve positions and assign; call before producing anything you expect back."""
        await asyncio.to_thread(self._assign_blocking, timeout)

    def _assign_blocking(self, timeout: float) -> None:
        tps = [
            TopicPartition(topic.value, p)
            for topic, parts in self._wanted.items()
            for p in (range(topic.partitions) if parts is None else parts)
        ]
        committed = self._consumer.committed(tps, timeout=timeout)
        positions = []
        for tp in committed:
            if tp.offset >= 0:
                positions.append(TopicPartition(tp.topic, tp.partition, tp.offset))
            elif self._start == "latest":
                _low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout)
                positions.append(TopicPartition(tp.topic, tp.partition, high))
            else:
                positions.append(TopicPartition(tp.topic, tp.partition, OFFSET_BEGINNING))
        self._consumer.assign(positions)
        self._assigned = positions
        self.stats.broker_up = True

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; the current batch finishes and is committed.

        Each batch is committed without waiting for the broker (a synchronous commit
        is a round trip in which nothing is fetched, added to every record's latency);
        the last one is committed synchronously when the loop stops.
        """
        if not self._assigned:
            await self.assign()
        try:
            while not stop.is_set():
                records = await asyncio.to_thread(self._fetch, 0.2)
                last: dict[tuple[str, int], int] = {}
                for record in records:
                    err = record.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            self._on_error(err)
                        continue
                    self.stats.broker_up = True
                    await self._process(record)
                    last[(record.topic() or "", record.partition() or 0)] = record.offset() or 0
                if last:
                    self._commit_soon(last)
        finally:
            await self._commit_handled()

    def _fetch(self, timeout: float) -> list[KafkaRecord]:
        """The records ready now, waiting up to ``timeout`` only while there are none.

        ``consume(n, timeout)`` alone waits the whole timeout unless ``n`` records
        arrive, which put up to 0.2 s on every hop; ``poll`` returns with the first.
        """
        first = self._consumer.poll(timeout)
        if first is None:
            return []
        return [first, *self._consumer.consume(self._batch - 1, 0)] if self._batch > 1 else [first]

    async def _process(self, record: KafkaRecord) -> None:
        topic = Topic(record.topic() or "")
        key = (record.key() or b"").decode("utf-8", "replace")
        if self._keys is not None and key not in self._keys:
            return  # same partition, someone else's key
        KafkaStats.bump(self.stats.consumed, topic.value)
        meta = Record(
            topic, record.partition() or 0, record.offset() or 0, key, record.timestamp()[1]
        )
        try:
            msg = decode_message(record.value() or b"", CHANNELS[topic])
        except MessageError as exc:
            await self._dead_letter(record, meta, exc.message)
            return
        attempt = 0
        while True:
            try:
                await self._handler(msg, meta)
                return
            except MessageError as exc:
                await self._dead_letter(record, meta, exc.message)
                return
            except Exception as exc:
                attempt += 1
                if attempt >= 5:
                    log.exception(
                        "handler failed, dead-lettering %s", kv(topic=topic, offset=meta.offset)
                    )
                    await self._dead_letter(record, meta, f"handler failed: {exc!r}")
                    return
                log.warning(
                    "handler failed, retrying %s",
                    kv(topic=topic.value, offset=meta.offset, attempt=attempt, error=repr(exc)),
                )
                await asyncio.sleep(0.2 * 2**attempt)

    async def _dead_letter(self, record: KafkaRecord, meta: Record, reason: str) -> None:
        KafkaStats.bump(self.stats.dead_lettered, meta.topic.value)
        log.warning(
            "dead-lettered %s",
            kv(topic=meta.topic.value, partition=meta.partition, offset=meta.offset, reason=reason),
        )
        if self._dead_letters is None:
            return
        payload = (record.value() or b"")[:65536].decode("utf-8", "replace")
        letter = DeadLetter(
            topic=meta.topic.value,
            partition=meta.partition,
            offset=meta.offset,
            key=meta.key[:256],
            reason=reason[:1024],
            payload=payload,
            consumer=self.group_id[:128],
            sent_at=time.time(),
        )
        try:
            await self._dead_letters.publish(Topic.DEAD_LETTER, meta.key or "none", letter)
        except KafkaException as exc:
            log.error("dead letter not delivered %s", kv(error=exc))

    def _commit_soon(self, last: dict[tuple[str, int], int]) -> None:
        for key, offset in last.items():
            self._handled[key] = offset + 1
        offsets = [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=True)
        except KafkaException as exc:  # e.g. no broker known yet; the next one covers it
            log.warning("commit failed %s", kv(group=self.group_id, error=exc))

    async def _commit_handled(self) -> None:
        """At stop: commit what the broker has not confirmed yet, and wait for it.

        Skipped while the broker is down (the wait would only time out): those
        records are read again after a restart, which idempotent handlers allow.
        """
        pending = {k: o for k, o in self._handled.items() if self._confirmed.get(k) != o}
        if not pending:
            return
        if not self.stats.broker_up:
            log.info("broker down at stop, last offsets not committed %s", kv(group=self.group_id))
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in pending.items()]
        try:
            await asyncio.to_thread(self._consumer.commit, offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("commit failed %s", kv(group=self.group_id, error=exc))

    def lag(self) -> dict[tuple[str, int], int]:
        """Records behind the high watermark, per assigned partition (cached watermarks)."""
        out = {}
        for tp in self._consumer.position(self._assigned):
            _low, high = self._consumer.get_watermark_offsets(tp, cached=True)
            if high >= 0 and tp.offset >= 0:
                out[(tp.topic, tp.partition)] = max(0, high - tp.offset)
        return out

    async def close(self) -> None:
        await asyncio.to_thread(self._consumer.close)
