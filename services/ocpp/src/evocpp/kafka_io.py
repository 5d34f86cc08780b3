"""The gateway's Kafka side: the engine role for every CP it holds.

Out: ``SupplyStarted`` / ``Telemetry`` / ``Ticket`` on ``ev.supply.telemetry`` and
idToken authorizations (``SupplyRequest``) on ``ev.supply.requests``, keyed by
CP id. Records that must arrive are re-sent with back-off until the broker
takes them; telemetry is fire-and-forget (the ticket carries the totals).

In: ``ev.directives`` and ``ev.supply.responses``. The gateway holds CPs whose
ids hash to any partition, so it reads every partition and keeps the records
keyed by a CP it holds (the others belong to engines).
"""

from __future__ import annotations

import asyncio
import logging

from evproto.errors import BrokerError
from evproto.kafka import (
    ConsumerLoop,
    Handler,
    KafkaSettings,
    KafkaStats,
    Publisher,
    assign_and_run,
)
from evproto.logs import kv
from evproto.retry import peer_retry
from evproto.schema import Message, MsgType
from evproto.topics import Topic

__all__ = ["KafkaSide"]

log = logging.getLogger("evocpp.kafka")


def _topic_of(kind: MsgType) -> Topic:
    """Authorizations go to the central's request topic, the rest is the engine's output."""
    return Topic.SUPPLY_REQUESTS if kind is MsgType.SUPPLY_REQUEST else Topic.TELEMETRY


class KafkaSide:
    def __init__(self, settings: KafkaSettings, group_id: str, handler: Handler) -> None:
        self.stats = KafkaStats()
        self.publisher = Publisher(settings, self.stats)
        self.consumer = ConsumerLoop(
            settings,
            group_id=group_id,
            partitions={Topic.DIRECTIVES: None, Topic.SUPPLY_RESPONSES: None},
            handler=handler,
            dead_letters=self.publisher,
            start="latest",
            stats=self.stats,
        )
        self._deliveries: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await self.publisher.start()

    async def read(self, stop: asyncio.Event, ready: asyncio.Event) -> None:
        await assign_and_run(self.consumer, stop, ready, what="directives", logger=log)

    def send(self, key: str, msg: Message) -> None:
        """Produce now, in order; what must arrive is followed until it has."""
        topic = _topic_of(msg.TYPE)
        first = self._produce(topic, key, msg)
        if msg.TYPE is MsgType.TELEMETRY:
            first.add_done_callback(_log_failure)
            return
        task = asyncio.create_task(self._deliver(topic, key, msg, first))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    def _produce(self, topic: Topic, key: str, msg: Message) -> asyncio.Future[None]:
        try:
            return self.publisher.publish(topic, key, msg)
        except BrokerError as exc:
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    async def _deliver(
        self, topic: Topic, key: str, msg: Message, first: asyncio.Future[None]
    ) -> None:
        try:
            await first
            return
        except BrokerError as exc:
            log.warning("%s not delivered, retrying %s", msg.TYPE.value, kv(cp=key, error=exc))
        async for attempt in peer_retry(f"broker ({msg.TYPE.value})", cap=5.0, log=log):
            with attempt:
                await self._produce(topic, key, msg)

    async def close(self, timeout: float) -> None:
        pending = set(self._deliveries)
        if pending:
            _done, late = await asyncio.wait(pending, timeout=timeout / 2)
            for task in late:
                task.cancel()
        if self.stats.broker_up:
            await self.consumer.close()
        await self.publisher.close(timeout / 2)


def _log_failure(delivery: asyncio.Future[None]) -> None:
    if not delivery.cancelled() and delivery.exception() is not None:
        log.warning("telemetry not delivered %s", kv(error=delivery.exception()))
