"""Everything the central publishes on Kafka, built from typed messages.

Publishing is fire-and-forget for the handlers: the idempotent producer keeps
retrying through a broker outage, a failure is logged and counted, and
shutdown flushes what is queued. Waiting for each broker acknowledgement
inside the (sequential) consumer would cap the central at one round trip per
record. What answers a consumed record is safe across a crash because its
offset is committed only once the broker confirmed the answer (evproto's
ConsumerLoop). Tickets are not always answers (a start timeout, an abort grace
period, a driver's cancel already marked done): they are *kept* — written to the
database's outbox in the transaction that ends the session, sent once it
committed, deleted once the broker confirmed them, and sent again by the next
start if a crash came first (the driver counts one ticket per session).

What the central says is proven (evproto.proofs): directives and answers to
an engine carry an HMAC with the CP's record key; whatever goes to a driver
(answers, updates, tickets) is sealed with that driver's key, so only it can
read it and it knows the central wrote it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator

from evproto.errors import BrokerError
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
from evproto.schema import Message, encode_message, new_id
from evproto.topics import Topic

from evcentral.db import Database, KeptRecord
from evcentral.keyring import Keyring
from evcentral.records import SessionRecord
from evcentral.registry import ChargingPoint

__all__ = ["Outbox"]

log = logging.getLogger("evcentral.outbox")


class Outbox:
    def __init__(self, publisher: Publisher, keys: Keyring, db: Database) -> None:
        self._publisher = publisher
        self._keys = keys
        self._db = db
        self.failures = 0
        self.unsealable = 0  # messages for a driver whose key is gone (revoked meanwhile)
        self.kept_records = 0  # in the database's outbox, not yet confirmed and deleted
        self._keeping: list[KeptRecord] | None = None  # inside kept()
        self._in_flight: set[int] = set()  # kept records handed to the publisher
        self._confirmed: list[int] = []  # kept records the broker has: to delete
        self._forgetting = False  # a delete is scheduled for this turn of the loop

    def publish(self, topic: Topic, key: str, msg: Message) -> None:
        if self._keeping is not None:
            self._keeping.append(KeptRecord(topic.value, key, encode_message(msg)))
            return
        future = self._publisher.publish(topic, key, msg)
        future.add_done_callback(lambda f: self._check(f, topic, key))

    # --- kept records (the transactional outbox) -------------------------------------------

    @contextlib.contextmanager
    def kept(self) -> Iterator[None]:
        """One database transaction in which everything published is kept: stored with
        the changes made inside, sent only once they committed (a failed commit sends
        nothing). Not within another transaction, whose commit would come later."""
        if self._keeping is not None or self._db.in_transaction:
            raise RuntimeError("kept records need a transaction of their own")
        keeping: list[KeptRecord] = []
        self._keeping = keeping
        try:
            with self._db.transaction():
                yield
                stored = self._db.keep_records(keeping, time.time())
        finally:
            self._keeping = None
        self.kept_records += len(stored)
        for record in stored:
            self._send_kept(record)

    def send_kept(self) -> int:
        """Send the kept records not on their way: at start, those a crash left behind."""
        waiting = [
            r
            for r in self._db.kept_records()
            if r.record_id not in self._in_flight and r.record_id not in self._confirmed
        ]
        self.kept_records = len(waiting) + len(self._in_flight) + len(self._confirmed)
        for record in waiting:
            self._send_kept(record)
        if waiting:
            log.info("kept records sent again %s", kv(records=len(waiting)))
        return len(waiting)

    def forget_confirmed(self) -> int:
        """Delete the kept records the broker confirmed (a crash before it sends them
        once more, which the recipients ignore). Run after each batch of confirmations;
        the central's flush runs it too, after a failed delete."""
        if not self._confirmed:
            return 0
        confirmed, self._confirmed = self._confirmed, []
        try:
            self._db.forget_records(confirmed)
        except sqlite3.Error:
            self._confirmed = confirmed + self._confirmed  # the next round tries again
            raise
        self.kept_records -= len(confirmed)
        return len(confirmed)

    def _forget_now(self) -> None:
        self._forgetting = False
        try:
            self.forget_confirmed()
        except sqlite3.Error as exc:  # locked or full: the flush tries again
            log.warning("kept records not deleted %s", kv(error=exc))

    def _send_kept(self, record: KeptRecord) -> None:
        topic = Topic(record.topic)
        try:
            future = self._publisher.publish_encoded(topic, record.key, record.value)
        except BrokerError as exc:  # refused locally; the row stays for the next start
            self.failures += 1
            log.error("kept record not sent %s", kv(topic=record.topic, key=record.key, error=exc))
            return
        self._in_flight.add(record.record_id)
        future.add_done_callback(lambda f: self._kept_delivered(f, record))

    def _kept_delivered(self, future: asyncio.Future[None], record: KeptRecord) -> None:
        self._in_flight.discard(record.record_id)
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            self._confirmed.append(record.record_id)
            if not self._forgetting:  # one delete for the confirmations of this turn
                self._forgetting = True
                asyncio.get_running_loop().call_soon(self._forget_now)
            return
        self.failures += 1  # a permanent refusal: the row stays, sent again at the next start
        log.error(
            "kept record not delivered %s",
            kv(topic=record.topic, key=record.key, record=record.record_id, error=exc),
        )

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
        """Within :meth:`kept` (the session ends in the same transaction)."""
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
