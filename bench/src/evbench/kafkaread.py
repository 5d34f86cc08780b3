"""A low-latency Kafka reader for the simulated fleets.

Like :class:`evproto.kafka.ConsumerLoop` it waits for the first record with
``poll`` and then takes whatever else is already fetched without waiting
(``consume(500, 0.2)`` alone returns early only when 500 records wait), so
what it measures is the broker and the central. Unlike it, it starts at the end of each
partition and commits nothing. The embedded broker reports a high watermark
that can lag the last batch of a partition, so records created before the
reader was assigned are skipped by their timestamp: nothing from an earlier
step is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka import Message as KafkaRecord
from evproto.errors import MessageError
from evproto.kafka import KafkaSettings, Record
from evproto.messages import CHANNELS
from evproto.schema import Message, decode_message
from evproto.topics import Topic

__all__ = ["FleetReader"]


class FleetReader:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        group_id: str,
        partitions: dict[Topic, list[int] | None],
        handler: Callable[[Message, Record], None],
        batch: int = 1000,
    ) -> None:
        self._consumer = Consumer(settings.consumer(group_id))
        self._wanted = partitions
        self._handler = handler
        self._batch = batch
        self.invalid = 0  # records that were not a valid message for their topic
        self.stale = 0  # records from before the assignment
        self._since_ms = 0
        self.broker_errors = 0

    async def assign(self, timeout: float = 10.0) -> None:
        await asyncio.to_thread(self._assign_at_end, timeout)

    def _assign_at_end(self, timeout: float) -> None:
        self._since_ms = int(time.time() * 1000)
        positions = []
        for topic, parts in self._wanted.items():
            for p in range(topic.partitions) if parts is None else parts:
                tp = TopicPartition(topic.value, p)
                _low, high = self._consumer.get_watermark_offsets(tp, timeout=timeout)
                positions.append(TopicPartition(topic.value, p, high))
        self._consumer.assign(positions)

    def _fetch(self) -> list[KafkaRecord]:
        first = self._consumer.poll(0.2)
        if first is None:
            return []
        return [first, *self._consumer.consume(self._batch, 0)]

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for record in await asyncio.to_thread(self._fetch):
                self._process(record)

    def _process(self, record: KafkaRecord) -> None:
        err = record.error()
        if err is not None:
            if err.code() != KafkaError._PARTITION_EOF:
                self.broker_errors += 1
            return
        if record.timestamp()[1] < self._since_ms:
            self.stale += 1
            return
        topic = Topic(record.topic() or "")
        meta = Record(
            topic,
            record.partition() or 0,
            record.offset() or 0,
            (record.key() or b"").decode("utf-8", "replace"),
            record.timestamp()[1],
        )
        try:
            msg = decode_message(record.value() or b"", CHANNELS[topic])
        except MessageError:
            self.invalid += 1
            return
        self._handler(msg, meta)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self._consumer.close)
