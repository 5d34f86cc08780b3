"""Billing is the central's: reports that cannot be true are refused, € is kWh × price."""

from __future__ import annotations

import dataclasses

import pytest
from evcentral.plausibility import bill, check_telemetry, check_ticket
from evcentral.records import SessionRecord, SessionStatus
from evproto.errors import ImplausibleRecord
from evproto.messages import Origin, Outcome, Telemetry, Ticket

T0 = 1_000_000.0
MAX_POWER = 350.0
MARGIN = 0.01


def session(**fields: object) -> SessionRecord:
    base = SessionRecord(
        session_id="s1",
        cp_id="CP-1",
        driver_id="D1",
        origin=Origin.DRIVER,
        status=SessionStatus.SUPPLYING,
        authorized_at=T0,
        price=0.5,
    )
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def telemetry(seq: int, kwh: float, power_kw: float = 22.0) -> Telemetry:
    return Telemetry(
        session_id="s1",
        cp_id="CP-1",
        driver_id="D1",
        seq=seq,
        kwh=kwh,
        eur=0.0,
        power_kw=power_kw,
        elapsed_s=float(seq),
        sent_at=T0 + seq,
    )


def ticket(kwh: float, last_seq: int = 10) -> Ticket:
    return Ticket(
        session_id="s1",
        cp_id="CP-1",
        driver_id="D1",
        last_seq=last_seq,
        kwh=kwh,
        eur=0.0,
        price=0.5,
        started_at=T0,
        ended_at=T0 + 10,
        outcome=Outcome.COMPLETED,
    )


def test_what_a_22_kw_charger_reports_each_second_passes() -> None:
    for seq in range(1, 11):
        kwh = 22.0 * seq / 3600
        check_telemetry(session(kwh=22.0 * (seq - 1) / 3600), telemetry(seq, kwh), T0 + seq + 0.5,
                        MAX_POWER, MARGIN)  # fmt: skip
    check_ticket(session(kwh=0.061, last_seq=10), ticket(0.0611), T0 + 11, 22.0, MARGIN)


@pytest.mark.parametrize(
    ("before", "report", "now", "why"),
    [
        (session(), telemetry(1000, 0.001), T0 + 10, "seq 1000 is beyond"),
        (session(kwh=0.05, last_seq=3), telemetry(4, 0.04), T0 + 10, "went down"),
        (session(), telemetry(1, 0.001, power_kw=999.0), T0 + 10, "is above 350"),
        (session(), telemetry(2, 50.0), T0 + 10, "more than"),
    ],
)
def test_telemetry_that_cannot_be_true_is_refused(
    before: SessionRecord, report: Telemetry, now: float, why: str
) -> None:
    with pytest.raises(ImplausibleRecord, match=why):
        check_telemetry(before, report, now, MAX_POWER, MARGIN)


@pytest.mark.parametrize(
    ("before", "report", "why"),
    [
        (session(kwh=0.05, last_seq=9), ticket(0.04), "below the last telemetry"),
        (session(kwh=0.05, last_seq=12), ticket(0.06, last_seq=10), "below 12 seen"),
        (session(kwh=0.05, last_seq=9), ticket(50.0), "more than"),  # 50 kWh for 0 €
    ],
)
def test_a_ticket_below_the_telemetry_or_beyond_the_possible_is_refused(
    before: SessionRecord, report: Ticket, why: str
) -> None:
    with pytest.raises(ImplausibleRecord, match=why):
        check_ticket(before, report, T0 + 11, 22.0, MARGIN)


def test_the_central_bills_kwh_times_the_agreed_price_within_the_drivers_limit() -> None:
    assert bill(2.0, 0.35) == pytest.approx(0.7)
    assert bill(2.0, 0.35, max_eur=0.5) == 0.5
    assert bill(0.0, 0.35) == 0.0
