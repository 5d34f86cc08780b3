"""Supply sessions: start, telemetry, tickets, start timeout and the abort grace period.

Rules: telemetry counts only when its ``seq`` is above the last one seen
(replays and reordering change nothing); a session gets exactly one ticket,
the first one (the engine's, or the central's own after a timeout or a
fault); anything arriving for an ended session is ignored and counted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evproto.errors import ImplausibleRecord, InvalidField
from evproto.kafka import Record
from evproto.messages import (
    DirectiveAction,
    Outcome,
    SessionPhase,
    SupplyStarted,
    Telemetry,
    Ticket,
)
from evproto.vocabulary import AbortCause

from evcentral.core import Core
from evcentral.db import Database
from evcentral.journal import LogKind
from evcentral.plausibility import bill, check_telemetry, check_ticket
from evcentral.records import SessionRecord, SessionStatus
from evcentral.registry import ChargingPoint

__all__ = ["Cause", "SessionManager"]

log = logging.getLogger("evcentral.sessions")


@dataclass(frozen=True, slots=True)
class Cause:
    """Why a session ends early: the metrics label and the reason a person reads."""

    label: AbortCause
    reason: str


class Causes:
    FAULT = Cause(AbortCause.FAULT, "charging point fault")
    ENGINE_UNREACHABLE = Cause(AbortCause.ENGINE_LOST, "the charging point's engine is unreachable")
    LINK_LOST = Cause(
        AbortCause.ENGINE_LOST, "the charging point is disconnected and has stopped reporting"
    )
    OPERATOR_STOP = Cause(AbortCause.OPERATOR_STOP, "stopped by the operator")
    START_TIMEOUT = Cause(AbortCause.START_TIMEOUT, "the vehicle was not plugged in in time")
    DRIVER_CANCEL = Cause(AbortCause.DRIVER_CANCEL, "cancelled by the driver")
    IMPLAUSIBLE = Cause(
        AbortCause.IMPLAUSIBLE,
        "the charging point's ticket was implausible; billed up to its last plausible report",
    )


class SessionManager:
    def __init__(
        self,
        core: Core,
        *,
        start_timeout: float,
        abort_grace: float,
        restore_grace: float = 30.0,
        max_power_kw: float = 350.0,
        energy_margin_kwh: float = 0.01,
        broker_ok: Callable[[], bool] = lambda: True,
    ) -> None:
        self._db = core.db
        self._registry = core.registry
        self._outbox = core.outbox
        self._journal = core.journal
        self._metrics = core.metrics
        self._clock = core.clock
        self._start_timeout = start_timeout
        self._abort_grace = abort_grace
        self._restore_grace = restore_grace
        self._max_power_kw = max_power_kw
        self._energy_margin = energy_margin_kwh
        self._broker_ok = broker_ok
        self._start_timers: dict[str, asyncio.TimerHandle] = {}
        self._grace: dict[str, tuple[Cause, asyncio.TimerHandle]] = {}
        self._watchdogs: dict[str, asyncio.TimerHandle] = {}  # engines of unlinked CPs
        self._progress: dict[str, SessionRecord] = {}  # telemetry not yet written

    # --- opening ---------------------------------------------------------------------

    def begin(self, session: SessionRecord) -> None:
        """An authorized session (already stored): CP waits, engine gets START."""
        cp = self._cp(session)
        self._registry.attach_session(cp, session)
        self._arm_start_timer(session, self._start_timeout)
        self._outbox.directive(cp.cp_id, DirectiveAction.START, session=session)
        self._metrics.sessions_started.labels(session.origin.value).inc()

    def start_again(self, session_id: str) -> None:
        """START once more for a session still waiting for its plug: a replayed request
        may mean the first START was lost with a crash before the broker had it."""
        session = self._registry.sessions.get(session_id)
        if session is not None and session.status is SessionStatus.AUTHORIZED:
            self._outbox.directive(session.cp_id, DirectiveAction.START, session=session)

    def restore(self) -> int:
        """Reattach the sessions open at the last stop; telemetry from Kafka reconciles them."""
        now = self._clock()
        restored = 0
        for session in self._db.open_sessions():
            cp = self._registry.get(session.cp_id)
            if cp is None:
                continue
            self._registry.attach_session(cp, session)
            if session.status is SessionStatus.AUTHORIZED:
                remaining = self._start_timeout - (now - session.authorized_at)
                self._arm_start_timer(session, max(1.0, remaining))
            else:  # its monitor has to come back, or its engine to go on reporting
                self._watch_engine(session, self._restore_grace)
            restored += 1
        return restored

    # --- a CP whose monitor link is gone ------------------------------------------------

    def link_lost(self, cp: ChargingPoint) -> None:
        """The monitor's link is gone, but the engine talks Kafka and may still supply.

        The supply goes on while its telemetry does; when that stops too, the engine
        is lost: a fault (the driver is told, the session closes with a partial
        ticket). A supply not started yet is bounded by the start timeout.
        """
        session = cp.session
        if session is not None and session.status is SessionStatus.SUPPLYING:
            self._watch_engine(session, self._abort_grace)

    def _watch_engine(self, session: SessionRecord, delay: float) -> None:
        handle = asyncio.get_running_loop().call_later(
            delay, self._check_engine, session.session_id, session.last_seq
        )
        old = self._watchdogs.pop(session.session_id, None)
        if old is not None:
            old.cancel()
        self._watchdogs[session.session_id] = handle

    def _check_engine(self, session_id: str, seq_then: int) -> None:
        self._watchdogs.pop(session_id, None)
        session = self._registry.sessions.get(session_id)
        if session is None:
            return
        cp = self._cp(session)
        if cp.connected:
            return  # the monitor is back: its status reports say how the CP is
        if session.last_seq > seq_then or not self._broker_ok():
            # still supplying, or the broker is away and silence proves nothing
            self._watch_engine(session, self._abort_grace)
            return
        self.cp_fault(cp, Causes.LINK_LOST)

    # --- engine messages (ev.supply.telemetry) -----------------------------------------

    def _open_session(self, msg: SupplyStarted | Telemetry | Ticket) -> SessionRecord | None:
        """The open session a record is about; None (counted) when it ended or never was.

        A record naming another CP or driver than its session is poison: dead-lettered.
        """
        session = self._registry.sessions.get(msg.session_id)
        if session is None:
            self._metrics.ignored_messages.labels(f"late_{msg.TYPE.value}").inc()
            return None
        if msg.cp_id != session.cp_id:
            raise InvalidField(msg.TYPE.value, "cp_id", f"session is at {session.cp_id}")
        if msg.driver_id != session.driver_id:
            raise InvalidField(msg.TYPE.value, "driver_id", f"session is {session.driver_id}'s")
        return session

    async def on_started(self, msg: SupplyStarted, _record: Record) -> None:
        session = self._open_session(msg)
        if session is not None and session.status is SessionStatus.AUTHORIZED:
            self._mark_started(session, msg.sent_at)
            self._outbox.driver_update(session, SessionPhase.SUPPLYING)

    async def on_telemetry(self, msg: Telemetry, _record: Record) -> None:
        session = self._open_session(msg)
        if session is None:
            return
        if msg.seq <= session.last_seq:
            self._metrics.ignored_messages.labels("duplicate_telemetry").inc()
            return
        check_telemetry(session, msg, self._clock(), self._max_power_kw, self._energy_margin)
        session.power_kw = msg.power_kw  # in memory only: bounds the ticket
        progress = {
            "last_seq": msg.seq,
            "kwh": msg.kwh,
            "eur": bill(msg.kwh, session.price, session.max_eur),  # the central's €
            "elapsed_s": msg.elapsed_s,
        }
        if session.status is SessionStatus.AUTHORIZED:
            # SupplyStarted was lost or reordered: the telemetry proves the supply runs
            self._mark_started(session, msg.sent_at - msg.elapsed_s, **progress)
        else:
            for name, value in progress.items():  # written in the next batch (flush)
                setattr(session, name, value)
            self._progress[session.session_id] = session
            self._registry.tile_changed(self._cp(session))
        if session.session_id not in self._grace:  # after an error the driver waits for the ticket
            self._outbox.driver_update(session, SessionPhase.SUPPLYING)

    async def on_ticket(self, msg: Ticket, record: Record) -> None:
        session = self._open_session(msg)
        if session is None:  # a copy (an engine sending it again, a replay): one ticket
            return
        power = session.power_kw or self._max_power_kw
        try:
            check_ticket(session, msg, self._clock(), power, self._energy_margin)
        except ImplausibleRecord:
            # the CP is done (it sent its ticket) but its figures are refused: close the
            # session with the last plausible telemetry, so it cannot hang open
            self._close(session, Outcome.ABORTED, Causes.IMPLAUSIBLE)
            raise
        # the driver's ticket says what the central bills, at the agreed price
        ticket = dataclasses.replace(
            msg, eur=bill(msg.kwh, session.price, session.max_eur), price=session.price, proof=""
        )
        self._finish(
            session, ticket, self._abort_label(session, msg.outcome), ended_by=_where(record)
        )

    # --- events from the monitor link, the operator and the driver ----------------------

    def cp_fault(self, cp: ChargingPoint, cause: Cause) -> None:
        """The CP broke, lost its link or was stopped: tell the driver, wait for the ticket."""
        session = cp.session
        if session is None or session.session_id in self._grace:
            return
        self._outbox.driver_update(session, SessionPhase.ERROR, cause.reason)
        self._journal.about(
            session,
            LogKind.FAULT,
            f"session at {cp.cp_id} interrupted: {cause.reason}",
            level=logging.WARNING,
        )
        handle = asyncio.get_running_loop().call_later(
            self._abort_grace, self._grace_expired, session.session_id
        )
        self._grace[session.session_id] = (cause, handle)

    def driver_stop(self, session: SessionRecord) -> None:
        cp_id = session.cp_id
        if session.status is SessionStatus.AUTHORIZED:
            self._close(
                session,
                Outcome.CANCELLED,
                Causes.DRIVER_CANCEL,
                end_supply="cancelled by the driver",
            )
            return
        self._outbox.directive(
            cp_id, DirectiveAction.END_SUPPLY, session=session, reason="stopped by the driver"
        )
        self._journal.about(
            session,
            LogKind.DIRECTIVE,
            f"END_SUPPLY sent to {cp_id}: the driver asked to stop",
        )

    # --- timers ---------------------------------------------------------------------------

    def _arm_start_timer(self, session: SessionRecord, delay: float) -> None:
        self._start_timers[session.session_id] = asyncio.get_running_loop().call_later(
            delay, self._start_timed_out, session.session_id
        )

    def _start_timed_out(self, session_id: str) -> None:
        self._start_timers.pop(session_id, None)
        session = self._registry.sessions.get(session_id)
        if session is None or session.status is not SessionStatus.AUTHORIZED:
            return
        self._close(
            session,
            Outcome.CANCELLED,
            Causes.START_TIMEOUT,
            end_supply=Causes.START_TIMEOUT.reason,
        )

    def _grace_expired(self, session_id: str) -> None:
        cause, _handle = self._grace.pop(session_id, (None, None))
        session = self._registry.sessions.get(session_id)
        if cause is None or session is None:
            return
        started = session.status is SessionStatus.SUPPLYING
        # make sure an engine that is still alive stops supplying what nobody will pay
        outcome = Outcome.ABORTED if started else Outcome.CANCELLED
        self._close(session, outcome, cause, end_supply=cause.reason)

    # --- ending -----------------------------------------------------------------------------

    def _close(
        self,
        session: SessionRecord,
        outcome: Outcome,
        cause: Cause,
        *,
        end_supply: str | None = None,
    ) -> None:
        """End a session with the central's own ticket, built from the last telemetry;
        with ``end_supply``, END_SUPPLY goes to the engine (kept with the ticket)."""
        ticket = Ticket(
            session_id=session.session_id,
            cp_id=session.cp_id,
            driver_id=session.driver_id,
            last_seq=session.last_seq,
            kwh=session.kwh,
            eur=session.eur,
            price=session.price,
            started_at=session.started_at or session.authorized_at,
            ended_at=self._clock(),
            outcome=outcome,
            reason=cause.reason,
        )
        self._finish(session, ticket, cause.label, end_supply=end_supply)

    def _finish(
        self,
        session: SessionRecord,
        ticket: Ticket,
        abort_label: AbortCause | None,
        *,
        ended_by: str = "",
        end_supply: str | None = None,
    ) -> None:
        """The session ends and its ticket (and END_SUPPLY) is kept in one transaction:
        a crash after it still sends them (evcentral.outbox)."""
        ended = dataclasses.replace(
            session,
            status=SessionStatus.ENDED,
            ended_at=ticket.ended_at,
            kwh=ticket.kwh,
            eur=ticket.eur,
            last_seq=max(session.last_seq, ticket.last_seq),
            outcome=ticket.outcome,
            reason=ticket.reason,
            ended_by=ended_by,
        )
        with self._outbox.kept():
            self._db.save_session(ended)
            if end_supply is not None:
                self._outbox.directive(
                    session.cp_id, DirectiveAction.END_SUPPLY, session=session, reason=end_supply
                )
            self._outbox.ticket(session, ticket)
        _apply(session, ended)  # memory changes once the commit is durable
        self._forget(session.session_id)
        self._registry.detach_session(session)
        self._count_ended(session, ticket, abort_label)
        self._journal.about(
            session,
            LogKind.TICKET,
            f"ticket {ticket.outcome.value} at {session.cp_id}: {ticket.kwh:.3f} kWh, "
            f"{ticket.eur:.2f} €" + (f" ({ticket.reason})" if ticket.reason else ""),
        )

    def _count_ended(
        self, session: SessionRecord, ticket: Ticket, abort_label: AbortCause | None
    ) -> None:
        m = self._metrics
        if ticket.outcome is Outcome.COMPLETED:
            m.sessions_completed.inc()
        else:
            m.sessions_aborted.labels(abort_label or AbortCause.FAULT).inc()
        m.energy_delivered.inc(ticket.kwh)
        m.revenue.inc(ticket.eur)
        if session.started_at is not None:
            m.session_duration.observe(max(0.0, ticket.ended_at - session.started_at))
            m.session_energy.observe(ticket.kwh)

    def _abort_label(self, session: SessionRecord, outcome: Outcome) -> AbortCause | None:
        if outcome is Outcome.COMPLETED:
            return None
        pending = self._grace.get(session.session_id)
        if pending is not None:
            return pending[0].label
        cp = self._registry.get(session.cp_id)
        if cp is not None and cp.out_of_service:
            return Causes.OPERATOR_STOP.label
        if outcome is Outcome.CANCELLED:
            return Causes.START_TIMEOUT.label
        return Causes.FAULT.label

    def _forget(self, session_id: str) -> None:
        self._cancel_timers(session_id)
        self._progress.pop(session_id, None)

    def _cancel_timers(self, session_id: str) -> None:
        for timers in (self._start_timers, self._watchdogs):
            handle = timers.pop(session_id, None)
            if handle is not None:
                handle.cancel()
        pending = self._grace.pop(session_id, None)
        if pending is not None:
            pending[1].cancel()

    # --- helpers -------------------------------------------------------------------------------

    def _mark_started(self, session: SessionRecord, started_at: float, **progress: Any) -> None:
        _save_then_apply(
            self._db, session, status=SessionStatus.SUPPLYING, started_at=started_at, **progress
        )
        handle = self._start_timers.pop(session.session_id, None)
        if handle is not None:
            handle.cancel()
        self._progress.pop(session.session_id, None)
        self._registry.refresh(self._cp(session))
        self._journal.about(
            session,
            LogKind.STARTED,
            f"supply started at {session.cp_id} for {session.driver_id}",
        )

    def _cp(self, session: SessionRecord) -> ChargingPoint:
        cp = self._registry.get(session.cp_id)
        if cp is None:  # sessions are only opened for known CPs, which are never removed
            raise LookupError(f"session {session.session_id} is at unknown CP {session.cp_id}")
        return cp

    @property
    def pending_aborts(self) -> int:
        """Sessions waiting for the engine's ticket after a fault or an operator stop."""
        return len(self._grace)

    def flush(self) -> int:
        """Write the telemetry progress kept in memory since the last flush (one transaction)."""
        if not self._progress:
            return 0
        pending = list(self._progress.values())
        self._db.flush_progress(pending)  # kept for the next flush if this one fails
        self._progress.clear()
        return len(pending)

    def close(self) -> None:
        """Stop the timers; open sessions stay open in the database for the next start."""
        for session_id in list(self._registry.sessions):
            self._cancel_timers(session_id)


def _save_then_apply(db: Database, session: SessionRecord, **changes: Any) -> None:
    """Write the changed session first; only once that commit is durable does the
    session in memory change (a failed write leaves memory and database agreeing,
    and the record that caused it is retried)."""
    db.save_session(dataclasses.replace(session, **changes))
    for name, value in changes.items():
        setattr(session, name, value)


def _apply(session: SessionRecord, stored: SessionRecord) -> None:
    for field in dataclasses.fields(SessionRecord):
        setattr(session, field.name, getattr(stored, field.name))


def _where(record: Record) -> str:
    return f"{record.topic.value}:{record.partition}:{record.offset}"
