"""A snapshot of a topic: every record from the beginning up to the end seen at the start.

No group joins and nothing is committed; records that are not valid messages
for the topic are skipped and counted.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from evproto.errors import BrokerError, MessageError
from evproto.kafka._errors import as_broker_error
from evproto.kafka.settings import KafkaSettings
from evproto.logs import kv
from evproto.messages import CHANNELS
from evproto.schema import Message, decode_message
from evproto.topics import Topic

__all__ = ["TopicSnapshot", "read_snapshot"]

log = logging.getLogger("evproto.kafka")
_BATCH = 500
_ROUND_TRIP_S = 3.0  # one metadata answer; longer means the broker is out of reach


@dataclass(slots=True)
class TopicSnapshot:
    messages: list[Message] = field(default_factory=list)  # in offset order per partition
    skipped: int = 0  # records that were not valid messages for the topic


async def read_snapshot(
    settings: KafkaSettings, topic: Topic, timeout: float, reader: str = "evproto.snapshot"
) -> TopicSnapshot:
    """Every message of ``topic``; BrokerError if it is not read to the end in ``timeout``.

    ``reader`` prefixes the throw-away group id the broker sees.
    """
    return await asyncio.to_thread(_read_blocking, settings, topic, timeout, reader)


def _read_blocking(
    settings: KafkaSettings, topic: Topic, timeout: float, reader: str
) -> TopicSnapshot:
    deadline = time.monotonic() + timeout
    with as_broker_error():
        # A throw-away group id: this reader commits nothing and joins no group.
        consumer = Consumer(settings.consumer(f"{reader}.{uuid.uuid4().hex[:12]}"))
        try:
            return _read_to_end(consumer, topic, timeout, deadline)
        finally:
            consumer.close()


def _read_to_end(
    consumer: Consumer, topic: Topic, timeout: float, deadline: float
) -> TopicSnapshot:
    ends: dict[int, int] = {}
    starts = []
    for partition in range(topic.partitions):
        tp = TopicPartition(topic.value, partition)
        low, high = consumer.get_watermark_offsets(tp, timeout=min(_ROUND_TRIP_S, timeout))
        if high > low:
            ends[partition] = high
            starts.append(TopicPartition(topic.value, partition, OFFSET_BEGINNING))
    snapshot = TopicSnapshot()
    if not starts:
        return snapshot
    consumer.assign(starts)
    while ends and time.monotonic() < deadline:
        for record in consumer.consume(_BATCH, 0.2):
            if record.error() is not None:
                continue
            partition, offset = record.partition() or 0, record.offset() or 0
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
            try:
                snapshot.messages.append(decode_message(record.value() or b"", CHANNELS[topic]))
            except MessageError as exc:
                log.warning(
                    "bad record skipped %s",
                    kv(topic=topic.value, partition=partition, offset=offset, error=exc),
                )
                snapshot.skipped += 1
    if ends:
        raise BrokerError(f"{topic.value} not read to the end within {timeout:g} s")
    return snapshot
