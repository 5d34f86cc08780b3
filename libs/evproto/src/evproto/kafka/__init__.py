"""Kafka behind evproto's API: the only package that imports ``confluent_kafka``.

One module per concern:

- ``settings``: how to reach the broker, and the counters a client keeps
- ``options``: the ``--kafka…`` flags a service's settings inherit (``KafkaOptions``)
- ``admin``: topics with their partition counts; is the broker there
- ``publisher``: an asyncio publisher on an idempotent producer
- ``consumer``: a consumer loop that validates, dead-letters and commits
- ``positions``: read positions kept in the reader's own file, not in a group
- ``assignment``: the partitions of a key, and a group's start positions
- ``reading``: a consumer loop that says when it reads (serve peers only from then)
- ``snapshot``: a topic read from the beginning to its current end
- ``lag``: a group's consumer lag

confluent-kafka is blocking; its calls run in worker threads so the services'
event loops never stall. Broker failures raise :class:`evproto.errors.BrokerError`.
"""

from evproto.kafka.admin import TopicAdmin, broker_reachable, create_topics, ensure_topics
from evproto.kafka.assignment import key_partitions, pin_start_positions
from evproto.kafka.consumer import TEMPORARY_ERRORS, ConsumerLoop, Handler, Record
from evproto.kafka.lag import GroupLag
from evproto.kafka.positions import PositionFile, Positions
from evproto.kafka.publisher import Publisher
from evproto.kafka.reading import assign_and_run, wait_until_assigned
from evproto.kafka.settings import KafkaSettings, KafkaStats
from evproto.kafka.snapshot import TopicSnapshot, read_snapshot

__all__ = [
    "TEMPORARY_ERRORS",
    "ConsumerLoop",
    "GroupLag",
    "Handler",
    "KafkaSettings",
    "KafkaStats",
    "PositionFile",
    "Positions",
    "Publisher",
    "Record",
    "TopicAdmin",
    "TopicSnapshot",
    "assign_and_run",
    "broker_reachable",
    "create_topics",
    "ensure_topics",
    "key_partitions",
    "pin_start_positions",
    "read_snapshot",
    "wait_until_assigned",
]
