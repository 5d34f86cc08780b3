"""Consumer lag: records between a group's committed offsets and the high watermarks."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import Consumer, TopicPartition

from evproto.kafka._errors import as_broker_error
from evproto.kafka.settings import KafkaSettings
from evproto.topics import Topic

__all__ = ["GroupLag"]


class GroupLag:
    """Reads a group's lag per topic with a client of its own (blocking calls).

    Not the consuming client: calling that one from a probe thread while it
    consumes can deadlock librdkafka.
    """

    def __init__(self, settings: KafkaSettings, group_id: str, topics: Iterable[Topic]) -> None:
        with as_broker_error():
            self._reader = Consumer(settings.consumer(group_id))
        self._partitions = [
            TopicPartition(topic.value, p) for topic in topics for p in range(topic.partitions)
        ]
        self._last: dict[str, int] = {}

    def read(self, budget: float = 3.0) -> dict[str, int]:
        """Lag per topic; the last reading when the broker is too slow for ``budget``
        seconds. BrokerError when it does not answer."""
        lag: dict[str, int] = {}
        deadline = time.monotonic() + budget
        with as_broker_error():
            for tp in self._reader.committed(self._partitions, timeout=2.0):
                if time.monotonic() > deadline:
                    return self._last
                _low, high = self._reader.get_watermark_offsets(tp, timeout=1.0)
                committed = tp.offset if tp.offset >= 0 else 0
                lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - committed)
        self._last = lag
        return lag

    def close(self) -> None:
        self._reader.close()
