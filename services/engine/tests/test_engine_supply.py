"""The supply state machine, driven directly with a hand-held clock."""

from __future__ import annotations

import itertools

import pytest
from evengine.events import EventKind, Step
from evengine.supply import SupplyMachine
from evproto.errors import InvalidField
from evproto.messages import (
    Directive,
    DirectiveAction,
    Origin,
    Outcome,
    SupplyRequest,
    SupplyResponse,
    SupplyStarted,
    Telemetry,
    Ticket,
)
from evproto.states import CpState, Health
from evproto.vocabulary import manual_driver_id

CP = "CP-1"
T0 = 1_000_000.0  # the clock: seconds, as time.time() would give
_ids = itertools.count(1)


def directive(action: DirectiveAction, **fields: object) -> Directive:
    base: dict[str, object] = {
        "directive_id": f"dir-{next(_ids)}",
        "cp_id": CP,
        "action": action,
        "sent_at": T0,
    }
    return Directive(**{**base, **fields})  # type: ignore[arg-type]


def start(
    session: str = "S1", driver: str = "D1", price: float = 0.5, **limits: float
) -> Directive:
    return directive(
        DirectiveAction.START, session_id=session, driver_id=driver, price=price, **limits
    )


def machine(**kwargs: object) -> SupplyMachine:
    # 36 kW: 0.01 kWh every second, easy figures
    options: dict[str, object] = {"power_kw": 36.0, "plug_delay": 0.0, "manual_timeout": 30.0}
    options.update(kwargs)
    return SupplyMachine(CP, make_id=lambda: "REQ-1", **options)  # type: ignore[arg-type]


def supplying(m: SupplyMachine, **limits: float) -> None:
    m.on_directive(start(**limits), T0)
    step = m.tick(T0)
    assert [type(x) for x in step.messages] == [SupplyStarted]
    assert m.state is CpState.SUPPLYING


def of_type(steps: list[Step], kind: type) -> list:  # type: ignore[type-arg]
    return [m for s in steps for m in s.messages if isinstance(m, kind)]


def run_clock(m: SupplyMachine, until: float, step_s: float = 1.0) -> list[Step]:
    steps, now = [], T0
    while now <= until + 1e-9:
        steps.append(m.tick(now))
        now += step_s
    return steps


# --- start and plug ---------------------------------------------------------------


def test_start_waits_for_the_automatic_plug_then_supplies() -> None:
    m = machine(plug_delay=2.0)
    step = m.on_directive(start(), T0)
    assert step.messages == []
    assert m.state is CpState.WAITING_FOR_SUPPLY
    assert m.next_due() == T0 + 2.0
    assert m.tick(T0 + 1.9).messages == []
    started = m.tick(T0 + 2.0).messages
    assert started == [SupplyStarted(session_id="S1", cp_id=CP, driver_id="D1", sent_at=T0 + 2.0)]
    assert m.state is CpState.SUPPLYING


def test_with_plug_delay_minus_one_the_plug_key_starts_the_supply() -> None:
    m = machine(plug_delay=None)
    m.on_directive(start(), T0)
    assert m.next_due() is None
    assert m.tick(T0 + 100).messages == []
    step = m.plug(T0 + 100)
    assert step.ok
    assert isinstance(step.messages[0], SupplyStarted)
    assert m.state is CpState.SUPPLYING
    again = m.plug(T0 + 101)
    assert not again.ok and "already plugged" in again.answer


def test_plug_without_an_authorized_supply_is_refused() -> None:
    step = machine().plug(T0)
    assert not step.ok
    assert "no authorized supply" in step.answer


# --- telemetry ------------------------------------------------------------------------


def test_telemetry_every_second_with_cumulative_energy_and_cost() -> None:
    m = machine()
    supplying(m)
    reports = of_type(run_clock(m, T0 + 3), Telemetry)
    assert [(t.seq, t.kwh, t.eur, t.elapsed_s) for t in reports] == [
        (1, 0.01, 0.005, 1.0),
        (2, 0.02, 0.01, 2.0),
        (3, 0.03, 0.015, 3.0),
    ]
    assert all(t.power_kw == 36.0 and t.session_id == "S1" for t in reports)
    status = m.status(T0 + 3)
    assert (status.kwh, status.eur, status.power_kw) == (0.03, 0.015, 36.0)


def test_a_late_tick_sends_one_report_not_a_burst() -> None:
    m = machine()
    supplying(m)
    step = m.tick(T0 + 3.5)
    reports = of_type([step], Telemetry)
    assert [(t.seq, t.kwh) for t in reports] == [(1, 0.035)]
    assert m.next_due() == T0 + 4.0


# --- endings ---------------------------------------------------------------------------


def test_unplug_ends_with_a_partial_report_and_a_ticket_equal_to_it() -> None:
    m = machine()
    supplying(m)
    run_clock(m, T0 + 2)
    step = m.unplug(T0 + 2.5)
    final, ticket = step.messages
    assert isinstance(final, Telemetry) and isinstance(ticket, Ticket)
    assert (final.seq, final.kwh, final.eur) == (3, 0.025, 0.0125)
    assert ticket == Ticket(
        session_id="S1",
        cp_id=CP,
        driver_id="D1",
        last_seq=3,
        kwh=0.025,
        eur=0.0125,
        price=0.5,
        started_at=T0,
        ended_at=T0 + 2.5,
        outcome=Outcome.COMPLETED,
        reason="vehicle unplugged",
    )
    assert m.state is CpState.ACTIVE and m.session is None
    assert "vehicle unplugged" in step.answer


def test_unplug_exactly_on_a_report_adds_no_extra_report() -> None:
    m = machine()
    supplying(m)
    run_clock(m, T0 + 2)
    step = m.unplug(T0 + 2)
    assert [type(x) for x in step.messages] == [Ticket]
    assert step.messages[0].last_seq == 2  # type: ignore[attr-defined]


def test_end_supply_directive_completes_with_its_reason() -> None:
    m = machine()
    supplying(m)
    step = m.on_directive(directive(DirectiveAction.END_SUPPLY, session_id="S1"), T0 + 1.5)
    ticket = of_type([step], Ticket)[0]
    assert (ticket.outcome, ticket.reason, ticket.kwh) == (
        Outcome.COMPLETED,
        "stopped by the driver",
        0.015,
    )
    m2 = machine()
    supplying(m2)
    reason = directive(DirectiveAction.END_SUPPLY, session_id="S1", reason="start timed out")
    assert of_type([m2.on_directive(reason, T0 + 1)], Ticket)[0].reason == "start timed out"


def test_end_supply_before_the_plug_drops_the_start_without_a_ticket() -> None:
    m = machine(plug_delay=None)
    m.on_directive(start(), T0)
    step = m.on_directive(directive(DirectiveAction.END_SUPPLY, session_id="S1"), T0 + 1)
    assert step.messages == []
    assert [e.kind for e in step.events] == [EventKind.DROPPED]
    assert m.state is CpState.ACTIVE and m.session is None


def test_end_supply_for_another_session_is_ignored() -> None:
    m = machine()
    supplying(m)
    step = m.on_directive(directive(DirectiveAction.END_SUPPLY, session_id="OTHER"), T0 + 1)
    assert step.messages == [] and m.state is CpState.SUPPLYING


@pytest.mark.parametrize(
    ("limits", "stop_after", "kwh", "eur", "reason"),
    [
        ({"max_kwh": 0.025}, 2.5, 0.025, 0.0125, "limit reached: 0.025 kWh"),
        ({"max_eur": 0.0075}, 1.5, 0.015, 0.0075, "limit reached: 0.0075 €"),
        ({"max_minutes": 0.05}, 3.0, 0.03, 0.015, "limit reached: 0.05 min"),
        ({"max_kwh": 0.05, "max_eur": 0.0075}, 1.5, 0.015, 0.0075, "limit reached: 0.0075 €"),
    ],
)
def test_a_limit_stops_exactly_at_the_limit(
    limits: dict[str, float], stop_after: float, kwh: float, eur: float, reason: str
) -> None:
    m = machine()
    supplying(m, **limits)
    assert m.next_due() == T0 + min(1.0, stop_after)
    steps = run_clock(m, T0 + 5)
    reports, tickets = of_type(steps, Telemetry), of_type(steps, Ticket)
    assert len(tickets) == 1
    ticket = tickets[0]
    assert (ticket.kwh, ticket.eur, ticket.reason) == (kwh, eur, reason)
    assert ticket.outcome is Outcome.COMPLETED
    assert ticket.ended_at == pytest.approx(T0 + stop_after)
    assert (reports[-1].kwh, reports[-1].eur, reports[-1].seq) == (kwh, eur, ticket.last_seq)
    assert all(r.kwh <= kwh for r in reports)
    assert m.state is CpState.ACTIVE


def test_ko_aborts_the_supply_and_ok_clears_it() -> None:
    m = machine()
    supplying(m)
    step = m.set_health(Health.KO, T0 + 1.2)
    ticket = of_type([step], Ticket)[0]
    assert (ticket.outcome, ticket.reason, ticket.kwh) == (
        Outcome.ABORTED,
        "charging point fault",
        0.012,
    )
    assert m.health is Health.KO and m.state is CpState.ACTIVE
    assert m.set_health(Health.OK, T0 + 2).ok
    assert m.health is Health.OK


def test_ko_while_waiting_for_the_plug_cancels_the_start() -> None:
    m = machine(plug_delay=None)
    m.on_directive(start(), T0)
    ticket = of_type([m.set_health(Health.KO, T0 + 3)], Ticket)[0]
    assert (ticket.outcome, ticket.reason, ticket.kwh, ticket.last_seq) == (
        Outcome.CANCELLED,
        "charging point fault",
        0.0,
        0,
    )


def test_start_while_ko_is_refused_with_a_cancelled_ticket() -> None:
    m = machine()
    m.set_health(Health.KO, T0)
    ticket = of_type([m.on_directive(start(), T0)], Ticket)[0]
    assert (ticket.outcome, ticket.reason) == (Outcome.CANCELLED, "charging point fault")
    assert m.state is CpState.ACTIVE and m.session is None


def test_stop_aborts_the_supply_and_puts_the_cp_out_of_order() -> None:
    m = machine()
    supplying(m)
    step = m.on_directive(directive(DirectiveAction.STOP), T0 + 2)
    ticket = of_type([step], Ticket)[0]
    assert (ticket.outcome, ticket.reason, ticket.kwh) == (
        Outcome.ABORTED,
        "stopped by the operator",
        0.02,
    )
    assert m.state is CpState.STOPPED
    assert m.state.label == "Out of Order"


def test_start_is_refused_while_stopped_and_accepted_after_resume() -> None:
    m = machine()
    m.on_directive(directive(DirectiveAction.STOP), T0)
    refused = m.on_directive(start("S1"), T0 + 1)
    ticket = of_type([refused], Ticket)[0]
    assert (ticket.session_id, ticket.outcome, ticket.reason) == (
        "S1",
        Outcome.CANCELLED,
        "charging point out of order",
    )
    assert m.state is CpState.STOPPED and m.session is None
    m.on_directive(directive(DirectiveAction.RESUME), T0 + 2)
    assert m.state is CpState.ACTIVE
    m.on_directive(start("S2"), T0 + 3)
    assert m.state is CpState.WAITING_FOR_SUPPLY


def test_a_second_start_while_busy_is_refused() -> None:
    m = machine()
    supplying(m)
    ticket = of_type([m.on_directive(start("S2", "D2"), T0 + 1)], Ticket)[0]
    assert (ticket.session_id, ticket.outcome) == ("S2", Outcome.CANCELLED)
    assert m.session is not None and m.session.session_id == "S1"


def test_shutdown_aborts_the_running_supply() -> None:
    m = machine()
    supplying(m)
    ticket = of_type([m.shutdown(T0 + 1)], Ticket)[0]
    assert (ticket.outcome, ticket.reason, ticket.kwh) == (
        Outcome.ABORTED,
        "charging point shut down",
        0.01,
    )
    assert m.shutdown(T0 + 2).outputs == []


def test_exactly_one_ticket_per_session() -> None:
    m = machine()
    supplying(m, max_kwh=0.015)
    steps = run_clock(m, T0 + 3)
    steps += [m.unplug(T0 + 4), m.set_health(Health.KO, T0 + 5), m.shutdown(T0 + 6)]
    steps.append(m.on_directive(directive(DirectiveAction.STOP), T0 + 7))
    assert len(of_type(steps, Ticket)) == 1


# --- directives: idempotence and bad ones ------------------------------------------------


def test_a_duplicate_directive_is_ignored() -> None:
    m = machine()
    first = start()
    m.on_directive(first, T0)
    assert m.seen(first.directive_id)
    m.tick(T0)
    m.unplug(T0 + 1)
    replay = m.on_directive(first, T0 + 2)
    assert replay.messages == []
    assert [e.kind for e in replay.events] == [EventKind.IGNORED]
    assert m.state is CpState.ACTIVE


def test_the_same_session_started_twice_is_ignored() -> None:
    m = machine()
    supplying(m)
    step = m.on_directive(start("S1"), T0 + 1)
    assert step.messages == [] and m.state is CpState.SUPPLYING


def test_recent_directive_ids_are_bounded() -> None:
    m = machine(remembered_directives=2)
    ids = [directive(DirectiveAction.RESUME) for _ in range(3)]
    for d in ids:
        m.on_directive(d, T0)
    assert not m.seen(ids[0].directive_id)
    assert m.seen(ids[1].directive_id) and m.seen(ids[2].directive_id)


def test_a_directive_for_another_cp_is_refused() -> None:
    with pytest.raises(InvalidField, match="cp_id"):
        machine().on_directive(directive(DirectiveAction.STOP, cp_id="CP-2"), T0)


@pytest.mark.parametrize("missing", ["session_id", "driver_id"])
def test_a_start_without_session_or_driver_is_refused(missing: str) -> None:
    with pytest.raises(InvalidField, match=missing):
        fields = {"session_id": "S1", "driver_id": "D1", "price": 0.5, missing: None}
        machine().on_directive(directive(DirectiveAction.START, **fields), T0)


def test_a_start_without_price_uses_the_current_price_or_is_refused() -> None:
    with pytest.raises(InvalidField, match="price"):
        machine().on_directive(start(price=None), T0)  # type: ignore[arg-type]
    m = machine(price=0.4)
    m.on_directive(start(price=None), T0)  # type: ignore[arg-type]
    assert m.session is not None and m.session.price == 0.4


def test_the_start_price_bills_even_after_a_price_update() -> None:
    m = machine(price=0.3)
    supplying(m)
    m.set_price(0.9)
    ticket = of_type([m.unplug(T0 + 1)], Ticket)[0]
    assert (ticket.price, ticket.eur) == (0.5, 0.005)
    assert m.price == 0.9


# --- manual supply (M12) -------------------------------------------------------------------


def test_manual_supply_request_and_start() -> None:
    m = machine()
    step = m.request_manual(T0)
    assert step.ok
    assert step.messages == [
        SupplyRequest(
            request_id="REQ-1",
            requester_id=CP,
            origin=Origin.MANUAL,
            cp_id=CP,
            sent_at=T0,
        )
    ]
    assert "waiting for the central" in m.status(T0 + 1).manual
    answer = SupplyResponse(
        request_id="REQ-1",
        requester_id=CP,
        origin=Origin.MANUAL,
        authorized=True,
        cp_id=CP,
        session_id="S9",
        price=0.5,
        sent_at=T0,
    )
    assert [e.kind for e in m.on_supply_response(answer, T0 + 1).events] == [
        EventKind.MANUAL_ANSWERED
    ]
    started = m.on_directive(start("S9", manual_driver_id(CP)), T0 + 2)
    assert EventKind.MANUAL_AUTHORIZED in [e.kind for e in started.events]
    assert m.manual is None
    m.tick(T0 + 2)
    ticket_events = [e for e in m.unplug(T0 + 3).events if e.kind is EventKind.TICKET]
    assert ticket_events[0].text.startswith("manual supply ticket: 0.010 kWh")


def test_manual_supply_denied_shows_the_reason() -> None:
    m = machine()
    m.request_manual(T0)
    denial = SupplyResponse(
        request_id="REQ-1",
        requester_id=CP,
        origin=Origin.MANUAL,
        authorized=False,
        reason="CP-1 is broken",
        sent_at=T0,
    )
    events = m.on_supply_response(denial, T0 + 1).events
    assert [(e.kind, e.text) for e in events] == [
        (EventKind.MANUAL_DENIED, "manual supply denied: CP-1 is broken")
    ]
    assert m.manual is None


def test_manual_supply_gives_up_after_the_timeout() -> None:
    m = machine(manual_timeout=30.0)
    m.request_manual(T0)
    assert m.next_due() == T0 + 30
    assert m.tick(T0 + 29.9).events == []
    events = m.tick(T0 + 30).events
    assert [e.kind for e in events] == [EventKind.MANUAL_GAVE_UP]
    assert "within 30 s" in events[0].text
    assert m.manual is None


def test_manual_supply_is_refused_when_the_cp_cannot_supply() -> None:
    m = machine()
    m.set_health(Health.KO, T0)
    assert not m.request_manual(T0).ok
    m.set_health(Health.OK, T0)
    m.on_directive(directive(DirectiveAction.STOP), T0)
    refused = m.request_manual(T0)
    assert not refused.ok and "out of order" in refused.answer
    m.on_directive(directive(DirectiveAction.RESUME), T0)
    assert m.request_manual(T0).ok
    assert not m.request_manual(T0).ok  # one at a time
