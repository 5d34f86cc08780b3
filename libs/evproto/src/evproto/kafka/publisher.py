"""An asyncio publisher on an idempotent producer.

confluent-kafka is blocking; its calls run in worker threads so the services'
event loops never stall. Every record goes to the partition
:func:`evproto.topics.partition_for` picks for its key, so consumers that want
one key read one partition. When librdkafka's local queue is full (a long
broker outage) records wait in a backlog, in order, instead of blocking the
event loop; :meth:`Publisher.room` lets a consumer hold off until it drains.
With ``redeliver``, a record whose delivery failed for a reason that passes (it
timed out after ``message.timeout.ms`` in a long outage, the partition had no
leader) is produced again after a backoff instead of failing: it stays pending,
so a consumer committing after its outputs (ConsumerLoop ``outputs``) never
commits past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections import deque
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka import Message as KafkaRecord

from evproto.kafka._errors import as_broker_error, broker_error
from evproto.kafka.admin import broker_reachable
from evproto.kafka.settings import KafkaSettings, KafkaStats
from evproto.logs import kv
from evproto.retry import backoff_delay
from evproto.schema import Message, encode_message
from evproto.topics import Topic, partition_for

__all__ = ["Publisher"]

log = logging.getLogger("evproto.kafka")

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


# Delivery errors that pass: the record is produced again (with ``redeliver``).
_RETRIABLE = frozenset(
    {
        KafkaError._MSG_TIMED_OUT,
        KafkaError._TIMED_OUT,
        KafkaError._TIMED_OUT_QUEUE,
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        KafkaError._UNKNOWN_PARTITION,
        KafkaError._UNKNOWN_TOPIC,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.NOT_ENOUGH_REPLICAS,
        KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
        KafkaError.KAFKA_STORAGE_ERROR,
    }
)
_REDELIVER_FIRST = 0.5  # seconds before a failed record is produced again; doubles
_REDELIVER_MAX = 30.0


@dataclass(slots=True)
class _Pending:
    """A record handed to the producer and not yet confirmed by the broker."""

    topic: Topic
    key: bytes
    value: bytes
    partition: int
    done: asyncio.Future[None]
    since: float
    failures: int = 0  # deliveries that failed and were tried again (redeliver)


class Publisher:
    """An idempotent producer for asyncio code.

    ``publish`` queues the record and returns a future resolved when the broker
    has it (or failed with the delivery error). A background task serves the
    delivery callbacks. Records stay in ``_pending`` until confirmed: if they
    stall while the broker answers (a broker that restarted empty no longer
    knows our producer id, and librdkafka retries that forever), or are reported
    failed because the producer itself is lost (fenced, unknown producer id), the
    producer is replaced and the pending records are sent again. Consumers are idempotent,
    so a record the old producer did deliver counts once. Failures are BrokerErrors.
    """

    def __init__(
        self,
        settings: KafkaSettings,
        stats: KafkaStats | None = None,
        *,
        stall_seconds: float = 15.0,
        redeliver: bool = False,
    ) -> None:
        self.stats = stats or KafkaStats()
        self._settings = settings
        self._stall_seconds = stall_seconds
        self._redeliver = redeliver
        # failed records waiting for their next try: a heap of (due time, id)
        self._redeliveries: list[tuple[float, int]] = []
        self._producer = self._new_producer()
        self._generation = 0
        self._pending: dict[int, _Pending] = {}
        self._next_id = 0
        self._last_stall_check = 0.0
        self._producer_lost = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._poller: asyncio.Task[None] | None = None
        # records the full local queue refused, oldest first (ids into _pending)
        self._backlog: deque[int] = deque()
        self._room = asyncio.Event()
        self._room.set()

    def _new_producer(self) -> Producer:
        with as_broker_error():
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
            if self._redeliveries:
                self._produce_due_redeliveries()
            if self._backlog:
                self._drain_backlog()
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
        self._backlog.clear()
        self._redeliveries.clear()  # every pending record is produced again below
        for record_id, pending in list(self._pending.items()):
            pending.since = now
            if self._backlog or not self._produce(record_id, pending):
                self._backlog.append(record_id)
        self._update_room()

    def publish(self, topic: Topic, key: str, msg: Message) -> asyncio.Future[None]:
        return self.publish_encoded(topic, key, encode_message(msg))

    def publish_encoded(self, topic: Topic, key: str, value: bytes) -> asyncio.Future[None]:
        """Publish a message already encoded (e.g. kept in an outbox as it was sent)."""
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        pending = _Pending(
            topic=topic,
            key=key.encode(),
            value=value,
            partition=partition_for(key, topic.partitions),
            done=loop.create_future(),
            since=time.monotonic(),
        )
        self._next_id += 1
        self._pending[self._next_id] = pending
        try:
            # behind the backlog, if any: a key's records stay in order
            if self._backlog or not self._produce(self._next_id, pending):
                self._backlog.append(self._next_id)
                self._update_room()
        except KafkaException as exc:  # refused locally, e.g. a misconfigured client
            del self._pending[self._next_id]
            raise broker_error(exc) from exc
        return pending.done

    def _produce_due_redeliveries(self) -> None:
        """Failed records whose backoff is over go to the producer again (behind the
        backlog, if any)."""
        now = time.monotonic()
        while self._redeliveries and self._redeliveries[0][0] <= now:
            _due, record_id = heapq.heappop(self._redeliveries)
            pending = self._pending.get(record_id)
            if pending is None:
                continue
            pending.since = now
            if self._backlog or not self._produce(record_id, pending):
                self._backlog.append(record_id)
        self._update_room()

    def _drain_backlog(self) -> None:
        """Hand the producer what its full queue refused, while it takes them."""
        while self._backlog:
            pending = self._pending.get(self._backlog[0])
            if pending is not None and not self._produce(self._backlog[0], pending):
                break
            self._backlog.popleft()
        self._update_room()

    def _update_room(self) -> None:
        if self._backlog:
            self._room.clear()
        else:
            self._room.set()

    async def room(self) -> None:
        """Return once no record waits for room in the producer's queue."""
        await self._room.wait()

    @property
    def published(self) -> int:
        """The id of the latest record published (ids grow by one per record)."""
        return self._next_id

    @property
    def settled_through(self) -> int:
        """Every record with an id up to this one is confirmed by the broker (or failed)."""
        if not self._pending:
            return self._next_id
        return next(iter(self._pending)) - 1  # ids are inserted in order

    def _produce(self, record_id: int, pending: _Pending) -> bool:
        """Hand the record to librdkafka; False if its local queue is full."""
        loop, generation = self._loop, self._generation
        assert loop is not None

        def on_delivery(err: KafkaError | None, _record: KafkaRecord) -> None:
            # librdkafka calls this from the thread that polls; hop to the loop.
            loop.call_soon_threadsafe(self._delivered, record_id, generation, err)

        try:
            self._producer.produce(
                pending.topic.value,
                value=pending.value,
                key=pending.key,
                partition=pending.partition,
                on_delivery=on_delivery,
            )
        except BufferError:  # the local queue is full; the poller retries
            return False
        return True

    def _delivered(self, record_id: int, generation: int, err: KafkaError | None) -> None:
        if generation != self._generation:
            return
        if err is not None and (err.fatal() or err.code() in _PRODUCER_LOST):
            if not self._producer_lost:
                log.warning("kafka producer lost; replacing it %s", kv(error=err.str()))
            self._producer_lost = True  # the record stays pending; the new producer sends it
            return
        pending = self._pending.get(record_id)
        if pending is None:
            return
        if err is not None and self._redeliver and err.code() in _RETRIABLE:
            self._redeliver_later(record_id, pending, err)  # kept in its place in _pending
            return
        del self._pending[record_id]
        if err is None:
            self.stats.broker_up = True
            KafkaStats.bump(self.stats.produced, pending.topic.value)
            _resolve(pending.done, None)
        else:
            self.stats.publish_failures += 1
            _resolve(pending.done, broker_error(err))

    def _redeliver_later(self, record_id: int, pending: _Pending, err: KafkaError) -> None:
        pending.failures += 1
        self.stats.publish_retries += 1
        wait = backoff_delay(pending.failures, initial=_REDELIVER_FIRST, cap=_REDELIVER_MAX)
        log.warning(
            "delivery failed, producing it again %s",
            kv(
                topic=pending.topic.value,
                key=pending.key.decode("utf-8", "replace"),
                failures=pending.failures,
                retry_in_s=f"{wait:.1f}",
                error=err.str(),
            ),
        )
        heapq.heappush(self._redeliveries, (time.monotonic() + wait, record_id))

    @property
    def pending(self) -> int:
        """Records handed over and not yet confirmed by the broker."""
        return len(self._pending)

    async def flush(self, timeout: float = 10.0) -> int:
        """Wait for queued records; returns how many are still undelivered."""
        deadline = time.monotonic() + timeout
        with as_broker_error():
            while self._backlog and time.monotonic() < deadline:
                self._drain_backlog()
                await asyncio.to_thread(self._producer.flush, 0.1)
            left = max(0.0, deadline - time.monotonic())
            remaining: int = await asyncio.to_thread(self._producer.flush, left)
        return remaining + len(self._backlog) + len(self._redeliveries)

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
