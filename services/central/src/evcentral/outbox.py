"""Everything the central publishes on Kafka, built from typed messages.

Publishing is fire-and-forget for the handlers: the idempotent producer keeps
retrying through a broker outage, a failure is logged and counted, and
shutdown flushes what is queued. Waiting for each broker acknowledgement
inside the (sequential) consumer would cap the central at one round trip per
record.

What the central says is proven (evproto.proofs): directives and answers to
an engine carry an HMAC with the CP's record key; whatever goes to a driver
(answers, updates, tickets) is sealed with that driver's key, so only it can
read it and it knows the central wrote it.
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
    EnrollResponse,
    Origin,
    SessionPhase,
    SupplyResponse,
    Ticket,
)
from evproto.proofs import Signer, prove, seal
from evproto.schema import Message, new_id
from evproto.topics import Topic

from evcentral.keyring import Keyring
from evcentral.records import SessionRecord
from evcentral.registry import ChargingPoint

__all__ = ["Outbox"]

log = logging.getLogger("evcentral.outbox")


class Outbox:
    def __init__(self, publisher: Publisher, keys: Keyring) -> None:
        self._publisher = publisher
        self._keys = keys
        self.failures = 0
        self.unsealable = 0  # messages for a driver whose key is gone (revoked meanwhile)

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

    def _to_driver(self, topic: Topic, driver_id: str, msg: Message) -> None:
        key = self._keys.driver_key(driver_id)
        if key is None:  # not enrolled (an OCPP card holder) or revoked: nobody to tell
            self.unsealable += 1
            log.debug("no key to seal for %s", kv(driver=driver_id, type=msg.TYPE.value))
            return
        self.publish(topic, driver_id, seal(msg, key, driver_id, topic))

    def _to_cp(self, topic: Topic, cp_id: str, msg: Message) -> None:
        key = self._keys.cp_key(cp_id)
        if key is not None:
            msg = prove(msg, key, Signer.CENTRAL)
        else:  # the engine will refuse it; its CP has not authenticated since record keys
            log.warning("no record key to prove for %s", kv(cp=cp_id, type=msg.TYPE.value))
        self.publish(topic, cp_id, msg)

    def response(self, response: SupplyResponse) -> None:
        if response.origin is Origin.DRIVER:
            self._to_driver(Topic.SUPPLY_RESPONSES, response.requester_id, response)
        else:
            self._to_cp(Topic.SUPPLY_RESPONSES, response.requester_id, response)

    def enrollment(self, response: EnrollResponse) -> None:
        self.publish(Topic.SUPPLY_RESPONSES, response.driver_id, response)

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
        self._to_cp(Topic.DIRECTIVES, cp_id, directive)
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
        self._to_driver(Topic.DRIVER_UPDATES, session.driver_id, update)

    def ticket(self, session: SessionRecord, ticket: Ticket) -> None:
        if session.relayed:
            self._to_driver(Topic.DRIVER_UPDATES, session.driver_id, ticket)

    def cp_state(self, cp: ChargingPoint) -> None:
        """Every driver reads ev.cp.state: it says how the CP is, never who charges
        there or how much (no driver id, session id, kWh or €)."""
        update = CpStateUpdate(
            cp_id=cp.cp_id,
            state=cp.state,
            location=cp.location[:120],
            price=cp.price,
            sent_at=time.time(),
        )
        self.publish(Topic.CP_STATE, cp.cp_id, update)
