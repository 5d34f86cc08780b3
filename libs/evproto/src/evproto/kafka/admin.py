"""Topics: create them with their partition counts, and ask the broker what it has."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from evproto.errors import BrokerError
from evproto.kafka._errors import as_broker_error, broker_error
from evproto.kafka.settings import KafkaSettings
from evproto.logs import kv
from evproto.topics import Topic

__all__ = ["TopicAdmin", "broker_reachable", "create_topics", "ensure_topics"]

log = logging.getLogger("evproto.kafka")


class TopicAdmin:
    """One admin client, kept by a caller that asks the broker again and again.

    Every call blocks (run it in a thread) and raises BrokerError when the
    broker does not answer.
    """

    def __init__(self, settings: KafkaSettings) -> None:
        with as_broker_error():
            self._admin = AdminClient(settings.common())

    def partition_counts(self, timeout: float = 2.0) -> dict[str, int]:
        """Every topic the broker has, with its partition count (a metadata round trip)."""
        with as_broker_error():
            metadata = self._admin.list_topics(timeout=timeout)
        return {name: len(topic.partitions) for name, topic in metadata.topics.items()}

    def ensure(self, partitions: Mapping[str, int], timeout: float = 15.0) -> None:
        """Create topics by name and partition count unless they exist."""
        wanted = [NewTopic(name, count, 1) for name, count in partitions.items()]
        with as_broker_error():
            futures = self._admin.create_topics(wanted, request_timeout=timeout)
        for name, fut in futures.items():
            try:
                fut.result(timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise broker_error(exc) from exc
            log.debug("topic ready %s", kv(topic=name))


def create_topics(
    settings: KafkaSettings, topics: Iterable[Topic] = tuple(Topic), timeout: float = 15.0
) -> None:
    """Create the topics with their partition counts; existing ones are left as they are."""
    ensure_topics(settings, {t.value: t.partitions for t in topics}, timeout)


def ensure_topics(
    settings: KafkaSettings, partitions: Mapping[str, int], timeout: float = 15.0
) -> None:
    """Create topics by name and partition count unless they exist (blocking)."""
    TopicAdmin(settings).ensure(partitions, timeout)


def broker_reachable(settings: KafkaSettings, timeout: float = 2.0) -> bool:
    """A metadata round trip; blocking, so call it in a thread."""
    try:
        TopicAdmin(settings).partition_counts(timeout)
    except BrokerError:
        return False
    return True
