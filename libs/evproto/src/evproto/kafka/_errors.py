"""The client library's errors, raised as :class:`evproto.errors.BrokerError`.

Callers of evproto's Kafka API catch one of our errors (and ``peer_retry``
retries it); ``confluent_kafka`` stays behind this package.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from confluent_kafka import KafkaError, KafkaException

from evproto.errors import BrokerError

__all__ = ["as_broker_error", "broker_error"]


def broker_error(problem: KafkaException | KafkaError | str) -> BrokerError:
    """A BrokerError saying in words what librdkafka reported."""
    if isinstance(problem, KafkaException):
        problem = problem.args[0] if problem.args else ""
    text = problem.str() if isinstance(problem, KafkaError) else str(problem)
    return BrokerError(text or None)


@contextlib.contextmanager
def as_broker_error() -> Iterator[None]:
    """Run client calls; a KafkaException leaves as a BrokerError."""
    try:
        yield
    except KafkaException as exc:
        raise broker_error(exc) from exc
