"""Read whole Kafka topics, every partition from the beginning, as evproto messages.

A throwaway consumer: manual assignment (no group join, nothing committed),
read until every partition reports its end. (The end comes from the fetch
answers: the embedded broker's ListOffsets answer lags behind the records.)
Records that do not decode as a message of their topic are returned apart, as
findings.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from confluent_kafka import Message as KafkaRecord
from evproto.errors import MessageError
from evproto.kafka import KafkaSettings
from evproto.messages import CHANNELS
from evproto.schema import Message, decode_message
from evproto.topics import Topic

__all__ = ["TopicContents", "read_topics"]

_READ_TIMEOUT_S = 20.0


@dataclass(slots=True)
class TopicContents:
    messages: dict[Topic, list[Message]] = field(default_factory=dict)
    undecodable: list[str] = field(default_factory=list)  # "topic[partition]@offset: why"
    missing: list[Topic] = field(default_factory=list)  # topics the broker does not have

    def of(self, topic: Topic) -> list[Message]:
        return self.messages.get(topic, [])


def read_topics(bootstrap: str, topics: tuple[Topic, ...]) -> TopicContents:
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
                    _decode(record, contents)
                elif err.code() == KafkaError._PARTITION_EOF:
                    unread.discard(where)
                else:
                    raise AssertionError(f"reading the topics failed: {err.str()}")
    finally:
        consumer.close()
    return contents


def _decode(record: KafkaRecord, contents: TopicContents) -> None:
    topic = Topic(record.topic() or "")
    try:
        message = decode_message(record.value() or b"", CHANNELS[topic])
    except MessageError as exc:
        where = f"{topic.value}[{record.partition()}]@{record.offset()}"
        contents.undecodable.append(f"{where}: {exc.message}")
    else:
        contents.messages[topic].append(message)
