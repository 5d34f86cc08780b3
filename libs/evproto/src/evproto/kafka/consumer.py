"""A consumer loop: read assigned partitions, validate, hand each message to a
handler, dead-letter poison records, hold back a partition whose record fails for
a while, commit after the handler succeeded."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka import Message as KafkaRecord

from evproto.errors import BrokerError, MessageError
from evproto.kafka._errors import as_broker_error
from evproto.kafka.positions import PositionFile
from evproto.kafka.publisher import Publisher
from evproto.kafka.settings import KafkaSettings, KafkaStats
from evproto.logs import kv
from evproto.messages import CHANNELS, DeadLetter
from evproto.retry import backoff_delay
from evproto.schema import Message, decode_message
from evproto.topics import Topic

__all__ = ["TEMPORARY_ERRORS", "ConsumerLoop", "Handler", "Record"]

log = logging.getLogger("evproto.kafka")

TEMPORARY_ERRORS: tuple[type[BaseException], ...] = (BrokerError, OSError, TimeoutError)
"""Failures that pass (broker away, disk full, a timeout): retried, never dead-lettered."""
_RETRY_FIRST_WAIT = 0.2  # seconds a partition is held after its first temporary failure
_RETRY_MAX_WAIT = 5.0
_SETTLE_AT_STOP = 3.0  # seconds a stopping loop waits for its outputs to be confirmed


class _FailingForNow(Exception):
    """The record's handler failed temporarily: its partition is held back."""


@dataclass(frozen=True, slots=True)
class _Held:
    """A partition paused at a record that failed temporarily, until ``until``."""

    offset: int  # the failing record's, read again on resumption
    until: float


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
    its topic, or whose handler raises a :class:`MessageError` or any error that
    is not ``temporary``, goes to the dead-letter topic at once with the reason (a
    poison record never holds up the next one). A ``temporary`` failure (database
    locked, disk full, broker away) holds back that record's partition alone: it is
    paused and rewound to the record, and read again after a backoff (0.2 s
    doubling to 5 s, with jitter) until the handler passes, while the other
    partitions go on; a stop meanwhile leaves that record uncommitted, to be read
    again. With ``outputs``, the
    records the handlers published through it must be confirmed by the broker
    before the offsets of what caused them are committed (a crash in between
    reads the cause again, and idempotent handlers answer it again), and no
    record is read while ``outputs`` waits for room in its queue. Broker failures
    raise :class:`~evproto.errors.BrokerError`.

    With ``positions`` the loop never uses the group's offsets: it starts from
    the stored positions (else ``start``, stored at once) and stores, instead of
    committing, the next offset of each handled batch. ``group_id`` then only
    names the client (librdkafka needs one); no group is joined or written.
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
        temporary: tuple[type[BaseException], ...] = TEMPORARY_ERRORS,
        outputs: Publisher | None = None,
        positions: PositionFile | None = None,
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
        with as_broker_error():
            self._consumer = Consumer(
                {
                    **settings.consumer(group_id),
                    "error_cb": self._on_error,
                    "on_commit": self._committed,
                }
            )
        self._temporary = temporary
        self._outputs = outputs
        self._positions = positions
        self._letters: list[asyncio.Future[None]] = []  # this batch's dead letters
        # handled batches waiting for their outputs: (last output id, next offsets)
        self._unsettled: deque[tuple[int, dict[tuple[str, int], int]]] = deque()
        self._held: dict[tuple[str, int], _Held] = {}  # partitions paused at a failing record
        self._failures: dict[tuple[str, int], int] = {}  # in a row, per partition
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
        with as_broker_error():
            await asyncio.to_thread(self._assign_blocking, timeout)

    def _assign_blocking(self, timeout: float) -> None:
        tps = [
            TopicPartition(topic.value, p)
            for topic, parts in self._wanted.items()
            for p in (range(topic.partitions) if parts is None else parts)
        ]
        if self._positions is not None:
            committed = self._stored(tps)
        else:
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
        if self._positions is not None:
            # stored before reading: a reader stopped before its first record must
            # not start at a later "latest" next time and miss what came in between
            self._handled = {(tp.topic, tp.partition): tp.offset for tp in positions}
            self._confirmed = dict(self._handled)
            if any(tp.offset < 0 for tp in positions):
                self._handled = {k: o for k, o in self._handled.items() if o >= 0}
            self._positions.save(self._handled)
        self._consumer.assign(positions)
        self._assigned = positions
        self.stats.broker_up = True

    def _stored(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        assert self._positions is not None
        stored = self._positions.load()
        return [
            TopicPartition(tp.topic, tp.partition, stored.get((tp.topic, tp.partition), -1001))
            for tp in tps
        ]

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
                if self._outputs is not None:
                    await self._outputs.room()  # backpressure: the producer's queue is full
                if self._held:
                    self._resume_due()
                records = await asyncio.to_thread(self._fetch, 0.2)
                last: dict[tuple[str, int], int] = {}
                for record in records:
                    err = record.error()
                    if err is not None:
                        if err.code() != KafkaError._PARTITION_EOF:
                            self._on_error(err)
                        continue
                    self.stats.broker_up = True
                    where = (record.topic() or "", record.partition() or 0)
                    if where in self._held:
                        continue  # behind a record that failed: read again on resumption
                    try:
                        await self._process(record)
                    except _FailingForNow as failing:
                        self._hold(where, record.offset() or 0, failing.__cause__)
                        continue
                    last[where] = record.offset() or 0
                    if self._failures:
                        self._failures.pop(where, None)
                if self._letters:
                    await self._letters_delivered()
                if last:
                    self._commit_after_outputs(last)
                self._commit_settled()
        finally:
            await self._settle(_SETTLE_AT_STOP)
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
        try:
            await self._handler(msg, meta)
        except MessageError as exc:
            await self._dead_letter(record, meta, exc.message)
        except self._temporary as exc:
            raise _FailingForNow from exc
        except Exception as exc:  # poison: retrying would fail the same way
            log.exception("handler failed, dead-lettering %s", kv(topic=topic, offset=meta.offset))
            await self._dead_letter(record, meta, f"handler failed: {exc!r}")

    def _hold(self, where: tuple[str, int], offset: int, failure: BaseException | None) -> None:
        """Pause the partition and rewind it to the failing record, for a backoff."""
        failures = self._failures.get(where, 0) + 1
        self._failures[where] = failures
        wait = backoff_delay(failures, initial=_RETRY_FIRST_WAIT, cap=_RETRY_MAX_WAIT)
        self._held[where] = _Held(offset, time.monotonic() + wait)
        tp = TopicPartition(where[0], where[1], offset)
        self._consumer.pause([tp])
        self._consumer.seek(tp)  # drops what was fetched after it
        log.warning(
            "handler failed, partition held back %s",
            kv(
                topic=where[0],
                partition=where[1],
                offset=offset,
                attempt=failures,
                retry_in_s=f"{wait:.1f}",
                error=repr(failure),
            ),
        )

    def _resume_due(self) -> None:
        """Read the held partitions whose backoff is over again, from the failed record."""
        now = time.monotonic()
        for where, held in list(self._held.items()):
            if held.until <= now:
                del self._held[where]
                tp = TopicPartition(where[0], where[1], held.offset)
                self._consumer.resume([tp])
                self._consumer.seek(tp)

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
            delivery = self._dead_letters.publish(Topic.DEAD_LETTER, meta.key or "none", letter)
        except BrokerError as exc:
            log.error("dead letter not delivered %s", kv(error=exc))
            return
        # awaited with the rest of the batch: a run of poison records costs one round
        # trip, not one each, before the good records behind them
        self._letters.append(delivery)

    async def _letters_delivered(self) -> None:
        """The batch's dead letters are stored (or failed, logged) before its commit."""
        letters, self._letters = self._letters, []
        for result in await asyncio.gather(*letters, return_exceptions=True):
            if isinstance(result, BaseException):
                log.error("dead letter not delivered %s", kv(error=result))

    def _commit_after_outputs(self, last: dict[tuple[str, int], int]) -> None:
        if self._outputs is None:
            self._commit_soon(last)
        else:
            self._unsettled.append((self._outputs.published, last))

    def _commit_settled(self) -> None:
        """Commit the batches whose outputs the broker has confirmed."""
        if self._outputs is None or not self._unsettled:
            return
        settled = self._outputs.settled_through
        ready: dict[tuple[str, int], int] = {}
        while self._unsettled and self._unsettled[0][0] <= settled:
            ready.update(self._unsettled.popleft()[1])
        if ready:
            self._commit_soon(ready)

    async def _settle(self, timeout: float) -> None:
        """At stop: wait (briefly) for the outputs of handled batches, committing them."""
        deadline = time.monotonic() + timeout
        while self._unsettled and time.monotonic() < deadline:
            self._commit_settled()
            if self._unsettled:
                await asyncio.sleep(0.05)
        if self._unsettled:
            log.warning(
                "stopping before outputs were confirmed; their causes are read again %s",
                kv(group=self.group_id, batches=len(self._unsettled)),
            )
            self._unsettled.clear()

    def _commit_soon(self, last: dict[tuple[str, int], int]) -> None:
        for key, offset in last.items():
            self._handled[key] = offset + 1
        if self._positions is not None:
            self._store_positions()
            return
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
        if self._positions is not None:
            self._store_positions()
            return
        if not self.stats.broker_up:
            log.info("broker down at stop, last offsets not committed %s", kv(group=self.group_id))
            return
        offsets = [TopicPartition(t, p, o) for (t, p), o in pending.items()]
        try:
            await asyncio.to_thread(self._consumer.commit, offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("commit failed %s", kv(group=self.group_id, error=exc))

    def _store_positions(self) -> None:
        assert self._positions is not None
        try:
            self._positions.save(self._handled)
        except OSError as exc:  # like a failed commit: those records are read again
            log.warning("positions not stored %s", kv(group=self.group_id, error=exc))
            return
        self._confirmed = dict(self._handled)

    async def close(self) -> None:
        await asyncio.to_thread(self._consumer.close)
