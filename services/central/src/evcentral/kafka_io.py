"""The central's Kafka side: one publisher, one consumer loop, and the broker probe.

The consumer (group ``evcentral``) reads every partition of the supply
requests and the telemetry, from the committed offsets (``earliest`` the
first time), and hands each validated message to the router; offsets are
committed after the handlers ran and the broker confirmed what they published
(responses, directives, relayed tickets), so a restart resumes where it stopped
and the idempotent handlers make a replay harmless. A database that is locked or
full is a temporary failure: the record is retried, never dead-lettered.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable

from evproto.errors import BrokerError
from evproto.kafka import (
    TEMPORARY_ERRORS,
    ConsumerLoop,
    GroupLag,
    KafkaSettings,
    KafkaStats,
    Publisher,
    Record,
    TopicAdmin,
    create_topics,
)
from evproto.logs import kv
from evproto.retry import peer_retry
from evproto.routing import Router
from evproto.schema import Message
from evproto.topics import Topic

__all__ = ["CONSUMED_TOPICS", "KafkaIO"]

log = logging.getLogger("evcentral.kafka")

CONSUMED_TOPICS = (Topic.SUPPLY_REQUESTS, Topic.TELEMETRY)
_LAG_BUDGET = 3.0  # seconds one lag reading may take


class KafkaIO:
    def __init__(
        self,
        settings: KafkaSettings,
        router: Router,
        *,
        group_id: str = "evcentral",
        create: bool = True,
    ) -> None:
        self.settings = settings
        self.produced = KafkaStats()
        self.consumed = KafkaStats()
        # a delivery failed by a long outage is produced again, never dropped: its
        # cause stays uncommitted (outputs) or its outbox row stays (evcentral.outbox)
        self.publisher = Publisher(settings, self.produced, redeliver=True)
        self._router = router
        self._create = create
        self.consumer = ConsumerLoop(
            settings,
            group_id=group_id,
            partitions={topic: None for topic in CONSUMED_TOPICS},
            handler=self._dispatch,
            dead_letters=self.publisher,
            start="earliest",
            stats=self.consumed,
            temporary=(*TEMPORARY_ERRORS, sqlite3.OperationalError),
            outputs=self.publisher,  # commit a cause only once its answers are stored
        )
        self._admin = TopicAdmin(settings)
        self._lag_reader = GroupLag(settings, group_id, CONSUMED_TOPICS)
        self.broker_ok = False
        self.consuming = False
        self.topics_recreated = False
        self._told_misshapen: set[Topic] = set()
        self._probing = False
        self._assigning: asyncio.Future[None] | None = None
        self._lag: dict[str, int] = {}

    async def _dispatch(self, msg: Message, record: Record) -> None:
        await self._router.dispatch(msg, record)

    async def start(self) -> None:
        await self.publisher.start()

    async def run(self, stop: asyncio.Event, on_topics_ready: Callable[[], None]) -> None:
        """Topics, then the consumer; every step retries while the broker is away."""
        if self._create:
            async for attempt in peer_retry("kafka (create topics)", cap=10.0, log=log):
                with attempt:
                    await asyncio.to_thread(create_topics, self.settings)
        on_topics_ready()
        async for attempt in peer_retry("kafka (assign partitions)", cap=10.0, log=log):
            with attempt:
                # shielded: on shutdown the blocking call runs on in its thread, and
                # close() must know it has not returned yet
                self._assigning = asyncio.ensure_future(self.consumer.assign())
                await asyncio.shield(self._assigning)
        self.consuming = True
        log.info("consuming %s", kv(topics=",".join(t.value for t in CONSUMED_TOPICS)))
        await self.consumer.run(stop)

    def probe(self) -> bool:
        """A metadata round trip (blocking: call it in a thread), and the consumer lag.

        The broker is usable when it answers and every topic exists. Topics that are
        gone (a broker that restarted empty) are created again when ``--create-topics``
        is on, and ``topics_recreated`` is set so the caller republishes what they held.
        """
        self._probing = True
        try:
            try:
                counts = self._admin.partition_counts(timeout=2.0)
                missing = [t for t in Topic if t.value not in counts]
                misshapen = self._misshapen(counts)
                if missing and self._create and self.consuming:
                    log.warning(
                        "topics missing, creating them again %s",
                        kv(topics=",".join(t.value for t in missing)),
                    )
                    create_topics(self.settings, missing)
                    self.topics_recreated = True
                    missing = []
            except BrokerError as exc:
                log.debug("broker probe failed %s", kv(error=exc))
                self.broker_ok = False
                return False
            self.broker_ok = not missing and not misshapen
            if self.consuming:
                try:
                    self._lag = self._lag_reader.read(_LAG_BUDGET)
                except BrokerError as exc:
                    log.debug("lag unknown %s", kv(error=exc))
            return True
        finally:
            self._probing = False

    def _misshapen(self, counts: dict[str, int]) -> list[Topic]:
        """Topics with another partition count than ours (made by someone else): the
        partitioner would address partitions that are not there. Told once each."""
        wrong = [
            topic
            for topic in Topic
            if topic.value in counts and counts[topic.value] != topic.partitions
        ]
        for topic in set(wrong) - self._told_misshapen:
            found = counts[topic.value]
            log.error(
                "topic has the wrong partition count; delete it and restart %s",
                kv(topic=topic.value, partitions=found, want=topic.partitions),
            )
        self._told_misshapen.update(wrong)
        return wrong

    def lag(self) -> dict[str, int]:
        return self._lag

    async def close(self, timeout: float = 5.0) -> None:
        try:
            await self.publisher.close(timeout)
        except BrokerError as exc:  # a producer failed for good: what it held is lost
            log.error("kafka producer closed with an error %s", kv(error=exc))
        # A blocking call cancelled on its asyncio side still runs in its thread; closing
        # the client under it would wait for its timeout. The process ends anyway.
        if self._assigning is None or self._assigning.done():
            await self.consumer.close()
        if not self._probing:  # never close it under a probe still running in its thread
            await asyncio.to_thread(self._lag_reader.close)
