"""What the engine reads from Kafka: its directives and the answers to its own
manual requests, each from the one partition that holds its CP id."""

from __future__ import annotations

import asyncio
import logging

from evproto.kafka import ConsumerLoop, Handler, KafkaSettings, KafkaStats, Publisher
from evproto.logs import kv
from evproto.retry import peer_retry
from evproto.topics import Topic, partition_for

__all__ = ["consume", "engine_consumer"]

log = logging.getLogger("evengine.inbox")


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


async def consume(consumer: ConsumerLoop, stop: asyncio.Event, ready: asyncio.Event) -> None:
    """Assign (retrying while the broker is down), then consume until ``stop``."""
    async for attempt in peer_retry("broker (reading directives)", cap=5.0, log=log):
        with attempt:
            await consumer.assign(timeout=5.0)
    ready.set()
    log.info("reading directives %s", kv(group=consumer.group_id))
    await consumer.run(stop)
