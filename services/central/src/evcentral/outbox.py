"""Everything the central publishes on Kafka, built from typed messages.

Publishing is fire-and-forget for the handlers: the idempotent producer keeps
retrying through a broker outage, a failure is logged and counted, and
shutdown flushes what is queued. Waiting for each broker acknowledgement
inside the (sequential) consumer would cap the central at one round trip per
record.
"""

from __future__ import annotations

import asyncio
import logging
import time

from evproto.kafka import Publisher
from evproto.logs import kv
from evproto.messages import (
    CpStateUpdate,
    Directive,
    DirectiveAction,
    DriverUpdate,
    SessionPhase,
    SupplyResponse,
    Ticket,
)
from evproto.schema import Message, new_id
from evproto.topics import Topic

from evcentral.records import SessionRecord
from evcentral.registry import ChargingPoint

__all__ = ["Outbox"]

log = logging.getLogger("evcentral.outbox")


class Outbox:
    def __init__(self, publisher: Publisher) -> None:
        self._publisher = publisher
        self.failures = 0

    def publish(self, topic: Topic, key: str, msg: Message) -> None:
        future = self._publisher.publish(topic, key, msg)
        future.add_done_callback(lambda f: self._check(f, topic, key))

    def _check(self, future: asyncio.Future[None], topic: Topic, key: str) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            self.failures += 1
            log.error("publish failed %s", kv(topic=topic.value, key=key, error=exc))

    # --- typed helpers ---------------------------------------------------------------

    def response(self, response: SupplyResponse) -> None:
        self.publish(Topic.SUPPLY_RESPONSES, response.requester_id, response)

    def directive(
        self,
        cp_id: str,
        action: DirectiveAction,
        *,
        session: SessionRecord | None = None,
        reason: str = "",
    ) -> Directive:
        directive = Directive(
            directive_id=new_id(),
            cp_id=cp_id,
            action=action,
            session_id=session.session_id if session else None,
            driver_id=session.driver_id if session else None,
            price=session.price if session else None,
            max_kwh=session.max_kwh if session else None,
            max_eur=session.max_eur if session else None,
            max_minutes=session.max_minutes if session else None,
            reason=reason,
            sent_at=time.time(),
        )
        self.publish(Topic.DIRECTIVES, cp_id, directive)
        return directive

    def driver_update(self, session: SessionRecord, phase: SessionPhase, reason: str = "") -> None:
        if not session.relayed:
            return
        update = DriverUpdate(
            driver_id=session.driver_id,
            session_id=session.session_id,
            cp_id=session.cp_id,
            phase=phase,
            seq=session.last_seq,
            kwh=session.kwh,
            eur=session.eur,
            elapsed_s=session.elapsed_s,
            reason=reason,
            sent_at=time.time(),
        )
        self.publish(Topic.DRIVER_UPDATES, session.driver_id, update)

    def ticket(self, session: SessionRecord, ticket: Ticket) -> None:
        if session.relayed:
            self.publish(Topic.DRIVER_UPDATES, session.driver_id, ticket)

    def cp_state(self, cp: ChargingPoint) -> None:
        session = cp.session
        update = CpStateUpdate(
            cp_id=cp.cp_id,
            state=cp.state,
            location=cp.location[:120],
            price=cp.price,
            driver_id=session.driver_id if session else None,
            session_id=session.session_id if session else None,
            kwh=session.kwh if session else 0.0,
            eur=session.eur if session else 0.0,
            sent_at=time.time(),
        )
        self.publish(Topic.CP_STATE, cp.cp_id, update)
