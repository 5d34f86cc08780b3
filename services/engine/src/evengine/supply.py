"""The charging point's supply state machine.

Pure: no I/O, no clock, no randomness it does not get from its caller. Every
input (a directive, a key, a tick of the clock) is a method that takes ``now``
and returns a :class:`Step`: the messages to publish, in order, and the events
to show and log. The runtime (``evengine.engine``) does the publishing.

States: ACTIVE -> (start) WAITING_FOR_SUPPLY -> (plug) SUPPLYING -> (end)
ACTIVE; STOP puts any state to STOPPED ("Out of Order") and RESUME back to
ACTIVE. Health (OK/KO) is kept apart: a KO ends a supply and refuses new ones.
Exactly one ticket leaves the machine per session it is told about.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace

from evproto.errors import InvalidField
from evproto.messages import (
    Directive,
    DirectiveAction,
    Origin,
    Outcome,
    SupplyRequest,
    SupplyResponse,
)
from evproto.schema import Message, new_id
from evproto.states import CpState, Health
from evproto.vocabulary import manual_driver_id

from evengine.events import Event, EventKind, Reason, Step
from evengine.session import Limits, Session
from evengine.status import EngineStatus

__all__ = ["REPORT_INTERVAL", "ManualRequest", "SupplyMachine"]

REPORT_INTERVAL = 1.0  # seconds between telemetry reports


@dataclass(slots=True)
class ManualRequest:
    """A manual supply (M12) waiting for the central's answer and start directive."""

    request_id: str
    deadline: float


class SupplyMachine:
    def __init__(
        self,
        cp_id: str,
        *,
        power_kw: float,
        price: float | None = None,
        plug_delay: float | None = 2.0,
        manual_timeout: float = 180.0,
        report_interval: float = REPORT_INTERVAL,
        make_id: Callable[[], str] = new_id,
        remembered_directives: int = 1024,
    ) -> None:
        self.cp_id = cp_id
        self.power_kw = power_kw
        self.price = price
        self.plug_delay = plug_delay  # None: the plug key is awaited
        self.manual_timeout = manual_timeout
        self.report_interval = report_interval
        self.state = CpState.ACTIVE
        self.health = Health.OK
        self.session: Session | None = None
        self.manual: ManualRequest | None = None
        self.central_reachable: bool | None = None
        self._make_id = make_id
        self._recent: deque[str] = deque(maxlen=remembered_directives)
        self._recent_set: set[str] = set()
        self._on_directive: dict[DirectiveAction, Callable[[Directive, float], Step]] = {
            DirectiveAction.START: self._start,
            DirectiveAction.END_SUPPLY: self._end_supply,
            DirectiveAction.STOP: self._stop,
            DirectiveAction.RESUME: self._resume,
        }

    # --- directives (central -> engine) --------------------------------------------

    def on_directive(self, directive: Directive, now: float) -> Step:
        """Apply a directive once; raises InvalidField for one this CP cannot take."""
        if directive.cp_id != self.cp_id:
            raise InvalidField(
                "directive", "cp_id", f"{directive.cp_id!r} is not this charging point"
            )
        if directive.directive_id in self._recent_set:
            return Step([_ignored(f"duplicate directive {directive.directive_id}")])
        step = self._on_directive[directive.action](directive, now)
        self._remember(directive.directive_id)
        return step

    def seen(self, directive_id: str) -> bool:
        """True for a directive applied recently (a replay is ignored)."""
        return directive_id in self._recent_set

    def _remember(self, directive_id: str) -> None:
        if len(self._recent) == self._recent.maxlen:
            self._recent_set.discard(self._recent[0])
        self._recent.append(directive_id)
        self._recent_set.add(directive_id)

    def _start(self, d: Directive, now: float) -> Step:
        if d.session_id is None:
            raise InvalidField("directive", "session_id", "is required for start")
        if d.driver_id is None:
            raise InvalidField("directive", "driver_id", "is required for start")
        price = d.price if d.price is not None else self.price
        if price is None:
            raise InvalidField("directive", "price", "is required for start (no price known)")
        if self.session is not None and self.session.session_id == d.session_id:
            return Step([_ignored(f"start of session {d.session_id} again")])
        plug_due = None if self.plug_delay is None else now + self.plug_delay
        limits = Limits(d.max_kwh, d.max_eur, d.max_minutes)
        session = Session(
            self.cp_id, d.session_id, d.driver_id, price, self.power_kw, now, limits, plug_due
        )
        refusal = self._start_refusal()
        if refusal is not None:
            # A cancelled ticket tells the central at once; it keeps the first ticket only.
            ticket = session.ticket(now, Outcome.CANCELLED, refusal)
            text = f"supply refused: {refusal}"
            return Step([ticket, _session_event(EventKind.REFUSED, text, session, warning=True)])
        self.session = session
        self.state = CpState.WAITING_FOR_SUPPLY
        if plug_due is None:
            how = "press p or run `evengine ctl plug` to plug the vehicle"
        else:
            how = f"the vehicle plugs in {self.plug_delay:g} s" if self.plug_delay else "plugging"
        text = f"supply authorized at {price:.2f} €/kWh; {how}"
        outputs: list[Message | Event] = [_session_event(EventKind.AUTHORIZED, text, session)]
        if self.manual is not None and d.driver_id == manual_driver_id(self.cp_id):
            self.manual = None
            text = f"manual supply authorized (session {d.session_id}); {how}"
            outputs.append(_session_event(EventKind.MANUAL_AUTHORIZED, text, session))
        return Step(outputs)

    def _start_refusal(self) -> Reason | None:
        if self.state is CpState.STOPPED:
            return Reason.OUT_OF_ORDER
        if self.health is Health.KO:
            return Reason.FAULT
        if self.session is not None:
            return Reason.BUSY
        return None

    def _end_supply(self, d: Directive, now: float) -> Step:
        session = self.session
        if session is None or (d.session_id is not None and d.session_id != session.session_id):
            return Step([_ignored(f"end of session {d.session_id}, which is not running")])
        reason = d.reason or Reason.DRIVER_STOP
        if session.plugged:
            return Step(self._finish(now, Outcome.COMPLETED, reason))
        # Never plugged: the central that sent this closes the session itself.
        self.session = None
        self.state = CpState.ACTIVE
        text = f"pending supply dropped: {reason}"
        return Step([_session_event(EventKind.DROPPED, text, session)])

    def _stop(self, _d: Directive, now: float) -> Step:
        outputs = self._end_any(now, Outcome.ABORTED, Reason.OPERATOR_STOP)
        self.state = CpState.STOPPED
        text = "out of order: stopped by the operator"
        outputs.append(Event(EventKind.STATE, text, warning=True))
        return Step(outputs)

    def _resume(self, _d: Directive, _now: float) -> Step:
        if self.state is not CpState.STOPPED:
            return Step([_ignored("resume, but the charging point is not stopped")])
        self.state = CpState.ACTIVE
        return Step([Event(EventKind.STATE, "back in service (resumed by the operator)")])

    # --- answers to this CP's manual requests ----------------------------------------

    def on_supply_response(self, response: SupplyResponse, _now: float) -> Step:
        if response.requester_id != self.cp_id:
            raise InvalidField(
                "supply_response", "requester_id", f"{response.requester_id!r} is not this CP"
            )
        manual = self.manual
        if manual is None or response.request_id != manual.request_id:
            return Step([_ignored(f"answer to request {response.request_id}, not pending")])
        if not response.authorized:
            self.manual = None
            text = f"manual supply denied: {response.reason or 'no reason given'}"
            return Step([Event(EventKind.MANUAL_DENIED, text, warning=True)])
        # The start directive completes it; the timeout runs until that arrives.
        text = "manual supply authorized by the central; waiting for its start directive"
        return Step([Event(EventKind.MANUAL_ANSWERED, text, response.session_id)])

    # --- keys and control commands ------------------------------------------------------

    def plug(self, now: float) -> Step:
        session = self.session
        if session is None:
            return Step(ok=False, answer="no authorized supply is waiting for a vehicle")
        if session.plugged:
            return Step(ok=False, answer="the vehicle is already plugged in")
        started = session.plug(now)
        self.state = CpState.SUPPLYING
        text = f"vehicle plugged in; supplying at {self.power_kw:g} kW, {session.price:.2f} €/kWh"
        return Step([started, _session_event(EventKind.STARTED, text, session)], answer=text)

    def unplug(self, now: float) -> Step:
        if self.session is None or not self.session.plugged:
            return Step(ok=False, answer="no vehicle is plugged in")
        step = Step(self._finish(now, Outcome.COMPLETED, Reason.UNPLUGGED))
        step.answer = f"vehicle unplugged; {step.events[-1].text}"
        return step

    def set_health(self, health: Health, now: float) -> Step:
        if health is self.health:
            return Step(answer=f"health is already {health.value}")
        self.health = health
        if health is Health.OK:
            text = "health OK: the simulated fault is cleared"
            return Step([Event(EventKind.HEALTH, text)], answer=text)
        outputs = self._end_any(now, Outcome.ABORTED, Reason.FAULT)
        text = "health KO: simulated fault; the monitor reports the CP broken"
        outputs.append(Event(EventKind.HEALTH, text, warning=True))
        return Step(outputs, answer=text)

    def request_manual(self, now: float) -> Step:
        """A supply asked for at the CP itself (M12): ask the central to authorize it."""
        refusal = self._manual_refusal()
        if refusal:
            return Step(ok=False, answer=f"manual supply not possible: {refusal}")
        request_id = self._make_id()
        self.manual = ManualRequest(request_id, now + self.manual_timeout)
        request = SupplyRequest(
            request_id=request_id,
            requester_id=self.cp_id,
            origin=Origin.MANUAL,
            cp_id=self.cp_id,
            sent_at=now,
        )
        text = (
            f"manual supply requested; waiting up to {self.manual_timeout:g} s "
            "for the central to authorize it"
        )
        return Step([request, Event(EventKind.MANUAL_REQUESTED, text)], answer=text)

    def _manual_refusal(self) -> str:
        if self.manual is not None:
            return "a manual request is already waiting for the central"
        if self.health is Health.KO:
            return "the charging point is KO"
        if self.state is not CpState.ACTIVE:
            return f"the charging point is {self.state.label.lower()}"
        return ""

    # --- notices from the monitor -----------------------------------------------------

    def set_price(self, price: float) -> Step:
        """The current price; a running session keeps its start directive's price."""
        self.price = price
        return Step([Event(EventKind.PRICE, f"price is now {price:.2f} €/kWh")])

    def set_central_reachable(self, reachable: bool) -> Step:
        if reachable is self.central_reachable:
            return Step()
        self.central_reachable = reachable
        if reachable:
            return Step([Event(EventKind.CENTRAL, "central reachable again")])
        text = "central unreachable; a running supply goes on to its end"
        return Step([Event(EventKind.CENTRAL, text, warning=True)])

    # --- the clock ----------------------------------------------------------------------

    def tick(self, now: float) -> Step:
        """What is due at ``now``: manual timeout, automatic plug, telemetry, a limit."""
        step = Step()
        manual = self.manual
        if manual is not None and now >= manual.deadline:
            self.manual = None
            text = (
                "manual supply: no start directive from the central within "
                f"{self.manual_timeout:g} s; gave up"
            )
            step.outputs.append(Event(EventKind.MANUAL_GAVE_UP, text, warning=True))
        session = self.session
        if session is None:
            return step
        if session.plug_due is not None and now >= session.plug_due:
            step.outputs += self.plug(now).outputs
        if not session.plugged:
            return step
        limit = session.limit()
        if limit is not None and now >= limit[0]:
            step.outputs += self._finish(limit[0], Outcome.COMPLETED, limit[1])
            return step
        due = session.next_report_at(self.report_interval)
        if due is not None and now >= due:
            step.outputs.append(session.report(now))
        return step

    def next_due(self) -> float | None:
        """When :meth:`tick` next has something to do."""
        times: list[float] = []
        if self.manual is not None:
            times.append(self.manual.deadline)
        session = self.session
        if session is not None:
            if session.plug_due is not None:
                times.append(session.plug_due)
            due = session.next_report_at(self.report_interval)
            if due is not None:
                times.append(due)
            limit = session.limit()
            if limit is not None:
                times.append(limit[0])
        return min(times, default=None)

    def shutdown(self, now: float) -> Step:
        """The engine is stopping: end whatever runs, with its ticket."""
        return Step(self._end_any(now, Outcome.ABORTED, Reason.SHUT_DOWN))

    def status(self, now: float) -> EngineStatus:
        manual_text = ""
        if self.manual is not None:
            left = max(0.0, self.manual.deadline - now)
            manual_text = f"waiting for the central ({left:.0f} s left)"
        status = EngineStatus(
            self.cp_id,
            self.state,
            self.health,
            self.price,
            0.0,
            manual=manual_text,
            central_reachable=self.central_reachable,
        )
        session = self.session
        if session is None:
            return status
        plugged_at = session.plugged_at
        return replace(
            status,
            session_id=session.session_id,
            driver_id=session.driver_id,
            # the figures the central has, not a guess between two reports
            kwh=session.reported.kwh,
            eur=session.reported.eur,
            elapsed_s=0.0 if plugged_at is None else max(0.0, now - plugged_at),
            power_kw=0.0 if plugged_at is None else self.power_kw,
        )

    # --- endings ------------------------------------------------------------------------------

    def _end_any(self, now: float, outcome: Outcome, reason: str) -> list[Message | Event]:
        """End a running supply (``outcome``) or cancel a pending one."""
        session = self.session
        if session is None:
            return []
        if session.plugged:
            return self._finish(now, outcome, reason)
        self.session = None
        self.state = CpState.ACTIVE
        text = f"pending supply cancelled: {reason}"
        ticket = session.ticket(now, Outcome.CANCELLED, reason)
        return [ticket, _session_event(EventKind.TICKET, text, session, warning=True)]

    def _finish(self, at: float, outcome: Outcome, reason: str) -> list[Message | Event]:
        """A final report of the partial interval if any, then the ticket with its figures."""
        session = self.session
        assert session is not None
        outputs: list[Message | Event] = []
        if session.unreported(at):
            outputs.append(session.report(at))
        ticket = session.ticket(at, outcome, reason)
        self.session = None
        self.state = CpState.ACTIVE
        manual = session.driver_id == manual_driver_id(self.cp_id)
        text = (
            f"{'manual supply ticket' if manual else 'ticket'}: {ticket.kwh:.3f} kWh, "
            f"{ticket.eur:.2f} €, {outcome.value} ({reason})"
        )
        warning = outcome is not Outcome.COMPLETED
        outputs += [ticket, _session_event(EventKind.TICKET, text, session, warning=warning)]
        return outputs


def _session_event(kind: EventKind, text: str, session: Session, *, warning: bool = False) -> Event:
    return Event(kind, text, session.session_id, session.driver_id, warning)


def _ignored(what: str) -> Event:
    return Event(EventKind.IGNORED, f"ignored: {what}")
