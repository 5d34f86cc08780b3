"""What the engine reads from Kafka: its directives and the answers to its own
manual requests, each from the one partition that holds its CP id."""

from __future__ import annotations

from evproto.kafka import ConsumerLoop, Handler, KafkaSettings, KafkaStats, Publisher
from evproto.topics import Topic, partition_for

__all__ = ["engine_consumer"]


def engine_consumer(
    settings: KafkaSettings,
    cp_id: str,
    handler: Handler,
    dead_letters: Publisher,
    stats: KafkaStats,
) -> ConsumerLoop:
    """Directives (key = CP id) and supply responses (key = requester id = CP id).

    ``latest`` on the first run: a new engine does not replay old directives;
    later runs resume from the committed offsets, so nothing sent while it was
    down is missed. Poison records go to the dead-letter topic.
    """
    return ConsumerLoop(
        settings,
        group_id=f"evengine.{cp_id}",
        partitions={
            Topic.DIRECTIVES: [partition_for(cp_id, Topic.DIRECTIVES.partitions)],
            Topic.SUPPLY_RESPONSES: [partition_for(cp_id, Topic.SUPPLY_RESPONSES.partitions)],
        },
        handler=handler,
        dead_letters=dead_letters,
        start="latest",
        keys=frozenset({cp_id}),
        stats=stats,
    )
