"""Publishing the machine's messages on Kafka, keyed by the CP id, in order.

SupplyStarted, Ticket and SupplyRequest must arrive: their delivery is awaited
in the background and retried with back-off (the broker or the central may be
down for a while), and shutdown waits for them. Telemetry is produced without
waiting; a failure is counted, and the ticket still carries the full figures.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from evproto.errors import BrokerError
from evproto.kafka import Publisher
from evproto.logs import kv
from evproto.retry import peer_retry
from evproto.schema import Message, MsgType
from evproto.topics import Topic

from evengine.metrics import EngineMetrics

__all__ = ["Outbox"]

log = logging.getLogger("evengine.outbox")

_TOPIC_OF = {
    MsgType.SUPPLY_STARTED: Topic.TELEMETRY,
    MsgType.TELEMETRY: Topic.TELEMETRY,
    MsgType.TICKET: Topic.TELEMETRY,
    MsgType.SUPPLY_REQUEST: Topic.SUPPLY_REQUESTS,
}
_MUST_DELIVER = frozenset({MsgType.SUPPLY_STARTED, MsgType.TICKET, MsgType.SUPPLY_REQUEST})


class Outbox:
    def __init__(
        self,
        publisher: Publisher,
        cp_id: str,
        metrics: EngineMetrics,
        prove: Callable[[Message], Message] = lambda msg: msg,
    ) -> None:
        self._publisher = publisher
        self._prove = prove
        self._key = cp_id
        self._metrics = metrics
        self._deliveries: set[asyncio.Task[None]] = set()

    @property
    def undelivered(self) -> int:
        """Messages that must arrive and have not yet."""
        return len(self._deliveries)

    def send(self, msg: Message) -> None:
        """Produce now (keeping the order); delivery is followed in the background."""
        topic = _TOPIC_OF[msg.TYPE]
        msg = self._prove(msg)  # the CP's record key (evengine.record_key)
        first = self._produce(topic, msg)
        if msg.TYPE in _MUST_DELIVER:
            task = asyncio.create_task(self._deliver(topic, msg, first), name=f"deliver-{msg.TYPE}")
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        else:
            first.add_done_callback(self._count_failure)

    def _produce(self, topic: Topic, msg: Message) -> asyncio.Future[None]:
        try:
            return self._publisher.publish(topic, self._key, msg)
        except BrokerError as exc:  # refused locally, e.g. the client is misconfigured
            failed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            failed.set_exception(exc)
            return failed

    def _count_failure(self, delivery: asyncio.Future[None]) -> None:
        if delivery.cancelled() or delivery.exception() is None:
            return
        self._metrics.telemetry_publish_failures.inc()
        log.warning("telemetry not delivered %s", kv(cp=self._key, error=delivery.exception()))

    async def _deliver(self, topic: Topic, msg: Message, first: asyncio.Future[None]) -> None:
        try:
            await first
            return
        except BrokerError as exc:
            log.warning(
                "%s not delivered, retrying %s", msg.TYPE.value, kv(cp=self._key, error=exc)
            )
        async for attempt in peer_retry(f"broker ({msg.TYPE.value})", cap=5.0, log=log):
            with attempt:
                await self._produce(topic, msg)
        log.info("%s delivered after retrying %s", msg.TYPE.value, kv(cp=self._key))

    async def drain(self, timeout: float) -> int:
        """Wait for the must-arrive messages; returns how many did not make it in time."""
        pending = set(self._deliveries)
        if pending:
            _done, pending = await asyncio.wait(pending, timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            log.error(
                "shutting down with undelivered messages %s", kv(cp=self._key, count=len(pending))
            )
        return len(pending)
