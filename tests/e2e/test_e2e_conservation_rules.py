"""The conservation audit itself: it passes a clean session and names each way a
session can be lost, cut short or billed twice (no processes: typed messages)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from e2e_conservation import audit
from evproto.messages import Origin, Outcome, SupplyResponse, Telemetry, Ticket
from evproto.schema import Message
from evproto.topics import Topic
from evstack.kafka_probe import TopicContents

PRICE = 0.30
SESSION = "s1"


def _response(origin: Origin = Origin.DRIVER) -> SupplyResponse:
    requester = "alice" if origin is Origin.DRIVER else "CP-0"
    return SupplyResponse(
        request_id="r1",
        requester_id=requester,
        origin=origin,
        authorized=True,
        cp_id="CP-0",
        session_id=SESSION,
        price=PRICE,
        sent_at=1.0,
    )


def _telemetry(seq: int, kwh: float | None = None) -> Telemetry:
    kwh = 0.01 * seq if kwh is None else kwh
    return Telemetry(
        session_id=SESSION,
        cp_id="CP-0",
        driver_id="alice",
        seq=seq,
        kwh=kwh,
        eur=round(kwh * PRICE, 6),
        power_kw=22.0,
        elapsed_s=float(seq),
        sent_at=1.0 + seq,
    )


def _ticket(last_seq: int = 3, outcome: Outcome = Outcome.COMPLETED, reason: str = "x") -> Ticket:
    kwh = 0.01 * last_seq
    return Ticket(
        session_id=SESSION,
        cp_id="CP-0",
        driver_id="alice",
        last_seq=last_seq,
        kwh=kwh,
        eur=round(kwh * PRICE, 6),
        price=PRICE,
        started_at=1.0,
        ended_at=5.0,
        outcome=outcome,
        reason=reason,
    )


def _listed(ticket: Ticket, **changes: Any) -> dict[str, Any]:
    row = {
        "session_id": ticket.session_id,
        "cp_id": ticket.cp_id,
        "driver_id": ticket.driver_id,
        "status": "ended",
        "kwh": ticket.kwh,
        "eur": ticket.eur,
        "price": ticket.price,
        "last_seq": ticket.last_seq,
        "outcome": ticket.outcome.value,
        "reason": ticket.reason,
    }
    return {**row, **changes}


def _contents(
    telemetry: list[Message], tickets: list[Message], origin: Origin = Origin.DRIVER
) -> TopicContents:
    return TopicContents(
        {
            Topic.SUPPLY_RESPONSES: [_response(origin)],
            Topic.TELEMETRY: telemetry,
            Topic.DRIVER_UPDATES: tickets,
        }
    )


CLEAN: list[Message] = [_telemetry(1), _telemetry(2), _telemetry(3)]


def test_a_ticket_sent_again_identically_counts_once() -> None:
    result = audit(_contents(CLEAN, [_ticket(), _ticket()]), [_listed(_ticket())])
    assert result.problems == []


def test_a_clean_session_balances() -> None:
    result = audit(_contents([*CLEAN, _telemetry(2)], [_ticket()]), [_listed(_ticket())])
    assert result.problems == []
    assert (result.authorized, result.completed) == (1, 1)
    assert result.kwh == pytest.approx(0.03)


@pytest.mark.parametrize(
    ("telemetry", "tickets", "listed", "problem"),
    [
        (CLEAN, [], [_listed(_ticket())], "no ticket delivered"),
        (
            CLEAN,
            [_ticket(), replace(_ticket(), reason="other")],
            [_listed(_ticket())],
            "2 tickets delivered",
        ),
        ([CLEAN[0], CLEAN[2]], [_ticket()], [_listed(_ticket())], "seq [2] missing"),
        ([*CLEAN, _telemetry(2, 0.5)], [_ticket()], [_listed(_ticket())], "different figures"),
        ([*CLEAN, _telemetry(4)], [_ticket()], [_listed(_ticket())], "last telemetry seq 4"),
        (CLEAN, [_ticket()], [], "missing from /api/sessions"),
        (CLEAN, [_ticket()], [_listed(_ticket(), status="supplying")], "never ended"),
        (CLEAN, [_ticket()], [_listed(_ticket(), kwh=0.02)], "/api/sessions kwh"),
        (
            CLEAN,
            [_ticket(outcome=Outcome.ABORTED, reason="")],
            [_listed(_ticket(outcome=Outcome.ABORTED, reason=""))],
            "without a reason",
        ),
        (
            CLEAN,
            [_ticket()],
            [_listed(_ticket()), _listed(replace(_ticket(), session_id="ghost"))],
            "no SupplyResponse authorized it",
        ),
        (CLEAN, [replace(_ticket(), eur=0.5)], [_listed(replace(_ticket(), eur=0.5))], "€"),
    ],
)
def test_each_imbalance_is_named(
    telemetry: list[Message], tickets: list[Message], listed: list[dict[str, Any]], problem: str
) -> None:
    problems = audit(_contents(telemetry, tickets), listed).problems
    assert any(problem in p for p in problems), problems


def test_a_manual_session_is_judged_by_what_the_central_stored() -> None:
    stored = _listed(_ticket(), driver_id="manual@CP-0")
    assert audit(_contents(CLEAN, [], Origin.MANUAL), [stored]).problems == []
    problems = audit(_contents(CLEAN[:2], [], Origin.MANUAL), [stored]).problems
    assert any("last telemetry seq 2" in p for p in problems), problems
