"""Which partitions a keyed reader reads, and where its group starts on them."""

from __future__ import annotations

from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition

from evproto.kafka._errors import as_broker_error
from evproto.kafka.settings import KafkaSettings
from evproto.topics import Topic, partition_for

__all__ = ["key_partitions", "pin_start_positions"]


def key_partitions(key: str, topics: Iterable[Topic]) -> dict[Topic, list[int] | None]:
    """The one partition of each topic that holds ``key``'s records (for ConsumerLoop)."""
    return {topic: [partition_for(key, topic.partitions)] for topic in topics}


def pin_start_positions(
    settings: KafkaSettings,
    group_id: str,
    partitions: dict[Topic, list[int] | None],
    timeout: float,
) -> None:
    """Commit the high watermark for ``group_id`` where it has no offset yet (blocking).

    A reader that starts at the *latest* offset the first time, and is stopped
    before it commits anything, would otherwise start at the latest offset of
    its next run too, and miss what was produced in between. BrokerError if the
    broker does not answer within ``timeout`` per round trip.
    """
    wanted = [
        TopicPartition(topic.value, p)
        for topic, parts in partitions.items()
        for p in (range(topic.partitions) if parts is None else parts)
    ]
    with as_broker_error():
        consumer = Consumer(settings.consumer(group_id))
        try:
            missing = [tp for tp in consumer.committed(wanted, timeout=timeout) if tp.offset < 0]
            if not missing:
                return
            starts = [
                TopicPartition(
                    tp.topic, tp.partition, consumer.get_watermark_offsets(tp, timeout=timeout)[1]
                )
                for tp in missing
            ]
            consumer.commit(offsets=starts, asynchronous=False)
        finally:
            consumer.close()
