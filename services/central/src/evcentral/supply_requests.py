"""Supply requests and stops from drivers and engines (ev.supply.requests), in arrival order.

Idempotent by ``request_id``: the decision is stored with the request id in
the same transaction as the session, and a replayed request gets the stored
response again instead of a second decision.
"""

from __future__ import annotations

import json
import logging

from evproto.kafka import Record
from evproto.logs import kv
from evproto.messages import Origin, SupplyRequest, SupplyResponse, SupplyStop
from evproto.schema import new_id

from evcentral.authorization import Decision, decide
from evcentral.core import Core
from evcentral.journal import LogKind
from evcentral.records import SessionRecord, SessionStatus
from evcentral.sessions import SessionManager

__all__ = ["SupplyDesk"]

log = logging.getLogger("evcentral.requests")


class SupplyDesk:
    def __init__(self, core: Core, sessions: SessionManager) -> None:
        self._db = core.db
        self._registry = core.registry
        self._outbox = core.outbox
        self._journal = core.journal
        self._metrics = core.metrics
        self._clock = core.clock
        self._sessions = sessions

    async def on_request(self, msg: SupplyRequest, _record: Record) -> None:
        seen, stored = self._db.processed(msg.request_id)
        if seen:
            if stored:  # the requester may have missed it: send the same answer again
                answer = SupplyResponse.from_dict(json.loads(stored))
                self._outbox.response(answer)
                if answer.session_id is not None:  # and the engine its START (it ignores a
                    self._sessions.start_again(answer.session_id)  # second one)
            return
        now = self._clock()
        self._journal.record(
            LogKind.REQUEST,
            f"{msg.requester_id} asks for a supply at {msg.cp_id or 'any CP'}"
            + {Origin.MANUAL: " (manual)", Origin.STATION: " (idToken)"}.get(msg.origin, ""),
            cp_id=msg.cp_id,
            driver_id=msg.requester_id,
        )
        owner = self._db.driver_of_token(msg.id_token) if msg.id_token else None
        decision = decide(msg, self._registry, now, owner)
        session = self._new_session(msg, decision, now) if decision.authorized else None
        response = SupplyResponse(
            request_id=msg.request_id,
            requester_id=msg.requester_id,
            origin=msg.origin,
            authorized=decision.authorized,
            cp_id=decision.cp_id,
            session_id=session.session_id if session else None,
            price=session.price if session else None,
            reason=decision.reason,
            sent_at=now,
        )
        with self._db.transaction():
            if msg.origin is Origin.DRIVER or owner is not None:
                self._db.touch_driver(decision.driver_id, now)
            if session is not None:
                self._db.save_session(session)
            self._db.mark_processed(
                msg.request_id, msg.TYPE.value, json.dumps(response.to_dict()), now
            )
        self._outbox.response(response)
        if session is not None:
            self._sessions.begin(session)
        self._count(decision, msg, now)

    def _new_session(self, msg: SupplyRequest, decision: Decision, now: float) -> SessionRecord:
        assert decision.cp_id is not None
        cp = self._registry.get(decision.cp_id)
        assert cp is not None
        return SessionRecord(
            session_id=new_id(),
            cp_id=cp.cp_id,
            driver_id=decision.driver_id,
            origin=msg.origin,
            status=SessionStatus.AUTHORIZED,
            authorized_at=now,
            price=cp.price,
            request_id=msg.request_id,
            max_kwh=msg.max_kwh,
            max_eur=msg.max_eur,
            max_minutes=msg.max_minutes,
        )

    def _count(self, decision: Decision, msg: SupplyRequest, now: float) -> None:
        result = "authorized" if decision.authorized else "denied"
        self._metrics.authorizations.labels(result, decision.code).inc()
        self._metrics.authorization_latency.observe(max(0.0, now - msg.sent_at))
        if decision.authorized:
            text = f"{decision.driver_id} authorized at {decision.cp_id}"
        else:
            text = f"{msg.requester_id} denied: {decision.reason}"
        self._journal.record(
            LogKind.AUTHORIZED if decision.authorized else LogKind.DENIED,
            text,
            cp_id=decision.cp_id,
            driver_id=decision.driver_id,
        )

    async def on_stop(self, msg: SupplyStop, _record: Record) -> None:
        seen, _stored = self._db.processed(msg.request_id)
        if seen:
            return
        with self._db.transaction():
            self._db.mark_processed(msg.request_id, msg.TYPE.value, None, self._clock())
        session = self._stoppable(msg)
        if session is None:
            self._metrics.ignored_messages.labels("stop").inc()
            log.info(
                "stop request without a running session %s",
                kv(driver=msg.requester_id, session=msg.session_id, cp=msg.cp_id),
            )
            return
        self._sessions.driver_stop(session)

    def _stoppable(self, msg: SupplyStop) -> SessionRecord | None:
        """The requester's running session that the stop names (or its only one)."""
        if msg.session_id is not None:
            session = self._registry.sessions.get(msg.session_id)
        else:
            session = self._registry.driver_sessions.get(msg.requester_id)
        if session is None:
            return None
        manual_at_its_cp = not session.relayed and msg.requester_id == session.cp_id
        owner = msg.requester_id == session.driver_id or manual_at_its_cp
        if not owner or (msg.cp_id is not None and msg.cp_id != session.cp_id):
            return None
        return session
