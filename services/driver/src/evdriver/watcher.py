"""The session logic: request a supply, follow it, stop it, resume it after a crash.

:class:`SessionWatcher` yields typed events (:mod:`evdriver.events`); it never
prints. Every change is saved in the state file before its event is yielded,
and a message is acknowledged (its offset may be committed) only after the
consumer of the events has shown it. Only messages for the current request
(``request_id``) and session (``session_id``) count; the rest are skipped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import AsyncIterator

from evproto.logs import kv
from evproto.messages import (
    DriverUpdate,
    Origin,
    Outcome,
    SessionPhase,
    SupplyRequest,
    SupplyResponse,
    SupplyStop,
    Ticket,
)
from evproto.routing import Router
from evproto.schema import Message, MsgType, new_id
from evproto.topics import Topic

from evdriver.events import (
    Authorized,
    Denied,
    Event,
    Interrupted,
    NoAnswer,
    Progress,
    Requested,
    Resumed,
    SessionError,
    Started,
    Stopping,
    TicketReceived,
    Waiting,
)
from evdriver.exitcodes import ExitCode, exit_code_for
from evdriver.link import DriverLink, Inbound
from evdriver.state import SavedSession, SavedStatus, StateStore

__all__ = ["ANY_CP", "Limits", "SessionResult", "SessionWatcher"]

log = logging.getLogger("evdriver.watcher")
ANY_CP = "any"  # request key (and batch/menu word) for the next available CP
_CATCH_UP_S = 5.0  # a resumed request gets at least this long for its answer to replay
_EARLY_UPDATES = 64  # updates kept while the answer that names their session is on its way


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    max_kwh: float | None = None
    max_eur: float | None = None
    max_minutes: float | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class SessionResult:
    """How a followed request ended (one row of a batch summary)."""

    exit_code: ExitCode
    outcome: str  # an Outcome value, "denied", "no_answer" or "interrupted"
    cp_id: str | None
    kwh: float = 0.0
    eur: float = 0.0
    reason: str = ""


class SessionWatcher:
    """Follows this driver's one current session; reused for consecutive requests."""

    def __init__(
        self,
        link: DriverLink,
        store: StateStore,
        *,
        answer_timeout: float,
        stop_wait: float,
    ) -> None:
        self.driver_id = link.driver_id
        self.result: SessionResult | None = None
        self._link = link
        self._store = store
        self._answer_timeout = answer_timeout
        self._stop_wait = stop_wait
        self._record: SavedSession | None = store.load()
        self._early: collections.deque[DriverUpdate | Ticket] = collections.deque(
            maxlen=_EARLY_UPDATES
        )
        self._wake = asyncio.Event()
        self._stop_requested = False
        self._stop_sent = False
        self._abandoned = False
        self._router = Router()
        self._router.on(MsgType.SUPPLY_RESPONSE)(self._on_response)
        self._router.on(MsgType.DRIVER_UPDATE)(self._on_update)
        self._router.on(MsgType.TICKET)(self._on_ticket)

    # --- what callers see ------------------------------------------------------------

    @property
    def record(self) -> SavedSession | None:
        return self._record

    @property
    def has_unfinished(self) -> bool:
        """A running session, or a ticket saved but never shown."""
        return self._record is not None and self._record.unfinished

    def request_stop(self) -> None:
        """Ctrl-C: ask the central to end the supply, then wait briefly for the ticket."""
        self._stop_requested = True
        self._wake.set()

    def abandon(self) -> None:
        """A second Ctrl-C: stop following at once (the supply goes on; `watch` resumes it)."""
        self._abandoned = True
        self._wake.set()

    async def request(self, cp_id: str | None, limits: Limits) -> AsyncIterator[Event]:
        """Publish a SupplyRequest (``cp_id`` None = next available) and follow it to its end."""
        self._reset_flags()
        record = SavedSession(
            request_id=new_id(),
            cp_id=cp_id,
            status=SavedStatus.REQUESTED,
            requested_at=time.time(),
            answer_timeout=self._answer_timeout,
        )
        self._record = record
        self._early.clear()
        self._store.save(record)
        yield Requested(driver_id=self.driver_id, request_id=record.request_id, cp_id=cp_id)
        request = SupplyRequest(
            request_id=record.request_id,
            requester_id=self.driver_id,
            origin=Origin.DRIVER,
            cp_id=cp_id,
            max_kwh=limits.max_kwh,
            max_eur=limits.max_eur,
            max_minutes=limits.max_minutes,
            sent_at=record.requested_at,
            ttl_s=self._answer_timeout,
        )
        log.info("request %s", kv(driver=self.driver_id, cp=cp_id or ANY_CP))
        try:
            await self._link.publish(
                Topic.SUPPLY_REQUESTS, cp_id or ANY_CP, request, self._answer_timeout
            )
        except Exception:
            record.status = SavedStatus.NO_ANSWER
            record.reason = "the request did not reach the broker"
            self._store.save(record)
            raise
        async for event in self._follow():
            yield event

    async def resume(self) -> AsyncIterator[Event]:
        """Show what a previous run left unfinished: live data, or the ticket it missed."""
        self._reset_flags()
        rec = self._record
        if rec is None or not self.has_unfinished:
            return
        yield Resumed(
            request_id=rec.request_id,
            session_id=rec.session_id,
            cp_id=rec.cp_id,
            status=rec.status.value,
            kwh=rec.kwh,
            eur=rec.eur,
            elapsed_s=rec.elapsed_s,
        )
        if rec.status is SavedStatus.ENDED:
            ticket = rec.ticket_message()
            if ticket is not None:
                yield TicketReceived(ticket=ticket)
                self._conclude_with_ticket(rec, ticket)
            return
        async for event in self._follow():
            yield event

    async def stop_supply(self) -> AsyncIterator[Event]:
        """The `stop` command: ask to end the running supply and wait for its ticket."""
        if self._record is not None and not self._record.status.running:
            async for event in self.resume():  # it ended meanwhile: show the ticket
                yield event
            return
        self._reset_flags()
        self._stop_requested = True
        async for event in self._follow():
            yield event

    def _reset_flags(self) -> None:
        self.result = None
        self._stop_requested = self._stop_sent = self._abandoned = False
        self._wake.clear()

    # --- the follow loop ---------------------------------------------------------------

    async def _follow(self) -> AsyncIterator[Event]:
        rec = self._record
        assert rec is not None
        answer_deadline = max(
            rec.requested_at + rec.answer_timeout,
            time.time() + min(rec.answer_timeout, _CATCH_UP_S),
        )
        stop_deadline: float | None = None
        last_news = time.monotonic()
        while rec.status.running:
            if self._abandoned:
                yield self._interrupted(rec)
                return
            if self._stop_requested and not self._stop_sent:
                if stop_deadline is None:
                    stop_deadline = time.monotonic() + self._stop_wait
                if rec.session_id is not None:
                    yield await self._send_stop(rec)
            timeout = self._answer_timeout
            if rec.status is SavedStatus.REQUESTED:
                timeout = min(timeout, answer_deadline - time.time())
            if stop_deadline is not None:
                timeout = min(timeout, stop_deadline - time.monotonic())
            inbound = await self._next(max(0.0, timeout))
            if inbound is not None:
                last_news = time.monotonic()
                for event in await self._apply(inbound.msg):
                    yield event
                self._mark_shown(rec)
                inbound.ack()
                continue
            if self._wake.is_set():
                self._wake.clear()
                continue
            if stop_deadline is not None and time.monotonic() >= stop_deadline:
                yield self._interrupted(rec)
                return
            if rec.status is SavedStatus.REQUESTED and time.time() >= answer_deadline:
                rec.status = SavedStatus.NO_ANSWER
                self._store.save(rec)
                self.result = SessionResult(ExitCode.NO_ANSWER, "no_answer", rec.cp_id)
                yield NoAnswer(
                    request_id=rec.request_id, cp_id=rec.cp_id, timeout_s=rec.answer_timeout
                )
                return
            if rec.status is not SavedStatus.REQUESTED:
                silent = time.monotonic() - last_news
                yield Waiting(session_id=rec.session_id, cp_id=rec.cp_id, silent_s=round(silent))

    async def _next(self, timeout: float) -> Inbound | None:
        """The next message, or None on timeout or when woken by a Ctrl-C."""
        getter = asyncio.ensure_future(self._link.get())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {getter, waker}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waker.cancel()
            if not getter.done():
                getter.cancel()  # Queue.get keeps the item when cancelled before returning it
        with contextlib.suppress(asyncio.CancelledError):
            return await getter
        return None

    async def _send_stop(self, rec: SavedSession) -> Event:
        self._stop_sent = True
        stop = SupplyStop(
            request_id=new_id(),
            requester_id=self.driver_id,
            session_id=rec.session_id,
            cp_id=rec.cp_id,
            sent_at=time.time(),
        )
        await self._link.publish(
            Topic.SUPPLY_REQUESTS, rec.cp_id or ANY_CP, stop, self._answer_timeout
        )
        log.info("stop sent %s", kv(driver=self.driver_id, session=rec.session_id, cp=rec.cp_id))
        return Stopping(session_id=rec.session_id, cp_id=rec.cp_id)

    def _interrupted(self, rec: SavedSession) -> Event:
        self.result = SessionResult(
            ExitCode.INTERRUPTED, "interrupted", rec.cp_id, rec.kwh, rec.eur
        )
        return Interrupted(driver_id=self.driver_id, session_id=rec.session_id)

    def _mark_shown(self, rec: SavedSession) -> None:
        if rec.status is SavedStatus.ENDED and not rec.ticket_shown:
            ticket = rec.ticket_message()
            if ticket is not None:
                self._conclude_with_ticket(rec, ticket)

    def _conclude_with_ticket(self, rec: SavedSession, ticket: Ticket) -> None:
        rec.ticket_shown = True
        self._store.save(rec)
        self.result = SessionResult(
            exit_code_for(ticket.outcome),
            ticket.outcome.value,
            ticket.cp_id,
            ticket.kwh,
            ticket.eur,
            ticket.reason,
        )

    # --- applying one message (state first, then the events to show) ------------------

    async def _apply(self, msg: Message) -> list[Event]:
        events: list[Event] = await self._router.dispatch(msg)
        return events

    async def _on_response(self, msg: SupplyResponse) -> list[Event]:
        rec = self._record
        if rec is None or msg.request_id != rec.request_id:
            return []  # an answer to an older request
        if rec.status is not SavedStatus.REQUESTED or msg.requester_id != self.driver_id:
            return []
        rec.cp_id = msg.cp_id or rec.cp_id
        if not msg.authorized:
            rec.status = SavedStatus.DENIED
            rec.reason = msg.reason
            self._store.save(rec)
            self.result = SessionResult(ExitCode.DENIED, "denied", rec.cp_id, reason=msg.reason)
            return [Denied(request_id=rec.request_id, cp_id=rec.cp_id, reason=msg.reason)]
        if msg.session_id is None or rec.cp_id is None:
            log.warning(
                "authorization without session or CP ignored %s", kv(request=rec.request_id)
            )
            return []
        rec.status = SavedStatus.AUTHORIZED
        rec.session_id = msg.session_id
        rec.price = msg.price
        self._store.save(rec)
        events: list[Event] = [
            Authorized(
                request_id=rec.request_id,
                session_id=msg.session_id,
                cp_id=rec.cp_id,
                price=msg.price,
            )
        ]
        early = [m for m in self._early if m.session_id == msg.session_id]
        self._early.clear()
        for update in early:
            events.extend(await self._apply(update))
        return events

    def _counting(self, msg: DriverUpdate | Ticket) -> SavedSession | None:
        """The record if this message counts now (this driver, this running session), else None.

        While the answer naming the session is on its way, session messages are kept aside.
        """
        rec = self._record
        if rec is not None and rec.status is SavedStatus.REQUESTED:
            self._early.append(msg)
            return None
        if rec is None or msg.driver_id != self.driver_id:
            return None
        return rec if rec.session_id == msg.session_id and rec.status.running else None

    async def _on_update(self, msg: DriverUpdate) -> list[Event]:
        rec = self._counting(msg)
        if rec is None:
            return []
        events: list[Event] = []
        if msg.phase is SessionPhase.ERROR:
            if msg.reason != rec.reason:
                rec.reason = msg.reason
                self._store.save(rec)
                events.append(
                    SessionError(session_id=msg.session_id, cp_id=msg.cp_id, reason=msg.reason)
                )
            return events
        if msg.phase is not SessionPhase.SUPPLYING:
            return events
        if rec.status is SavedStatus.AUTHORIZED:
            rec.status = SavedStatus.SUPPLYING
            self._store.save(rec)
            events.append(Started(session_id=msg.session_id, cp_id=msg.cp_id))
        if msg.seq > rec.seq:
            rec.seq, rec.kwh, rec.eur, rec.elapsed_s = msg.seq, msg.kwh, msg.eur, msg.elapsed_s
            self._store.save(rec)
            events.append(
                Progress(
                    session_id=msg.session_id,
                    cp_id=msg.cp_id,
                    seq=msg.seq,
                    kwh=msg.kwh,
                    eur=msg.eur,
                    elapsed_s=msg.elapsed_s,
                )
            )
        return events

    async def _on_ticket(self, msg: Ticket) -> list[Event]:
        rec = self._counting(msg)
        if rec is None:
            return []
        rec.status = SavedStatus.ENDED
        rec.kwh, rec.eur, rec.reason = msg.kwh, msg.eur, msg.reason
        rec.ticket = msg.to_dict()
        rec.ticket_shown = False  # set once the event has been shown (_mark_shown)
        self._store.save(rec)
        if msg.outcome is not Outcome.COMPLETED:
            log.info("session ended %s", kv(session=msg.session_id, outcome=msg.outcome.value))
        return [TicketReceived(ticket=msg)]
