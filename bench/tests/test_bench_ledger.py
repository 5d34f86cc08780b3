"""Session accounting: every session one ticket, telemetry without gaps or repeats."""

from __future__ import annotations

from evbench.ledger import SessionLedger


def test_a_complete_session_is_clean() -> None:
    ledger = SessionLedger()
    ledger.authorized("S1", "D1", "CP-1")
    for seq in (1, 2, 3):
        ledger.telemetry("S1", seq)
    assert ledger.ticket("S1", last_seq=3) is True
    check = ledger.check()
    assert check.clean
    assert (check.sessions, check.tickets, check.telemetry) == (1, 1, 3)


def test_missing_and_duplicate_tickets_are_counted() -> None:
    ledger = SessionLedger()
    ledger.authorized("S1", "D1", "CP-1")
    ledger.authorized("S2", "D2", "CP-2")
    ledger.ticket("S1", 0)
    assert ledger.ticket("S1", 0) is False  # the second one
    check = ledger.check()
    assert check.missing_tickets == 1
    assert check.duplicate_tickets == 1
    assert not check.clean
    assert ledger.open_sessions() == 1


def test_telemetry_gaps_and_repeats_are_counted_against_the_ticket() -> None:
    ledger = SessionLedger()
    ledger.authorized("S1", "D1", "CP-1")
    for seq in (1, 2, 2, 4):
        ledger.telemetry("S1", seq)
    ledger.ticket("S1", last_seq=5)
    check = ledger.check()
    assert check.seq_duplicates == 1
    assert check.seq_gaps == 2  # 3 and 5 never arrived


def test_a_ticket_for_an_unknown_session_is_an_error() -> None:
    ledger = SessionLedger()
    assert ledger.ticket("nobody", 1) is False
    assert ledger.check().unknown_tickets == 1
    assert ledger.unknown_examples == ["nobody"]


def test_a_repeated_authorization_is_reported() -> None:
    ledger = SessionLedger()
    assert ledger.authorized("S1", "D1", "CP-1") is True
    assert ledger.authorized("S1", "D1", "CP-1") is False
