"""The central's Kafka side: one publisher, one consumer loop, and the broker probe.

The consumer (group ``evcentral``) reads every partition of the supply
requests and the telemetry, from the committed offsets (``earliest`` the
first time), and hands each validated message to the router; offsets are
committed after the handlers ran, so a restart resumes where it stopped and
the idempotent handlers make a replay harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from evproto.kafka import ConsumerLoop, KafkaSettings, KafkaStats, Publisher, Record, create_topics
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
        self.publisher = Publisher(settings, self.produced)
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
        )
        self._admin = AdminClient(settings.common())
        # Lag is read with a consumer of its own: calling the consuming one from the
        # probe thread while it consumes can deadlock librdkafka.
        self._lag_reader = Consumer(settings.consumer(group_id))
        self._partitions = [
            TopicPartition(topic.value, p)
            for topic in CONSUMED_TOPICS
            for p in range(topic.partitions)
        ]
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
                metadata = self._admin.list_topics(timeout=2.0)
                missing = [t for t in Topic if t.value not in metadata.topics]
                misshapen = self._misshapen(metadata.topics)
                if missing and self._create and self.consuming:
                    log.warning(
                        "topics missing, creating them again %s",
                        kv(topics=",".join(t.value for t in missing)),
                    )
                    create_topics(self.settings, missing)
                    self.topics_recreated = True
                    missing = []
            except KafkaException as exc:
                log.debug("broker probe failed %s", kv(error=exc))
                self.broker_ok = False
                return False
            self.broker_ok = not missing and not misshapen
            if self.consuming:
                try:
                    self._lag = self._read_lag()
                except KafkaException as exc:
                    log.debug("lag unknown %s", kv(error=exc))
            return True
        finally:
            self._probing = False

    def _misshapen(self, topics: dict[str, Any]) -> list[Topic]:
        """Topics with another partition count than ours (made by someone else): the
        partitioner would address partitions that are not there. Told once each."""
        wrong = [
            topic
            for topic in Topic
            if topic.value in topics and len(topics[topic.value].partitions) != topic.partitions
        ]
        for topic in set(wrong) - self._told_misshapen:
            found = len(topics[topic.value].partitions)
            log.error(
                "topic has the wrong partition count; delete it and restart %s",
                kv(topic=topic.value, partitions=found, want=topic.partitions),
            )
        self._told_misshapen.update(wrong)
        return wrong

    def _read_lag(self) -> dict[str, int]:
        """Records between the group's committed offsets and the high watermarks, per topic."""
        lag: dict[str, int] = {}
        deadline = time.monotonic() + _LAG_BUDGET
        for tp in self._lag_reader.committed(self._partitions, timeout=2.0):
            if time.monotonic() > deadline:  # the broker is slow: keep the last numbers
                return self._lag
            _low, high = self._lag_reader.get_watermark_offsets(tp, timeout=1.0)
            committed = tp.offset if tp.offset >= 0 else 0
            lag[tp.topic] = lag.get(tp.topic, 0) + max(0, high - committed)
        return lag

    def lag(self) -> dict[str, int]:
        return self._lag

    async def close(self, timeout: float = 5.0) -> None:
        try:
            await self.publisher.close(timeout)
        except KafkaException as exc:  # a producer failed for good: what it held is lost
            log.error("kafka producer closed with an error %s", kv(error=exc))
        # A blocking call cancelled on its asyncio side still runs in its thread; closing
        # the client under it would wait for its timeout. The process ends anyway.
        if self._assigning is None or self._assigning.done():
            await self.consumer.close()
        if not self._probing:  # never close it under a probe still running in its thread
            await asyncio.to_thread(self._lag_reader.close)
