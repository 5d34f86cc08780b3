"""Session accounting on the driver side: nothing lost, nothing duplicated.

Every authorized session must end with exactly one ticket at its driver, and
the telemetry the driver saw must be ``1 … last_seq`` of that ticket with no
gap and no repeat.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["LedgerCheck", "SessionLedger"]


@dataclass(slots=True)
class _Session:
    driver_id: str
    cp_id: str
    seqs: list[int] = field(default_factory=list)
    tickets: int = 0
    last_seq: int | None = None


@dataclass(frozen=True, slots=True)
class LedgerCheck:
    sessions: int
    tickets: int
    missing_tickets: int
    duplicate_tickets: int
    unknown_tickets: int  # a ticket for a session this driver fleet was never authorized
    telemetry: int
    seq_gaps: int  # telemetry numbers below the ticket's last seq never seen
    seq_duplicates: int

    @property
    def clean(self) -> bool:
        return not (
            self.missing_tickets
            or self.duplicate_tickets
            or self.unknown_tickets
            or self.seq_gaps
            or self.seq_duplicates
        )


class SessionLedger:
    def __init__(self) -> None:
        self._sessions: dict[str, _Session] = {}
        self._unknown_tickets = 0
        self.unknown_examples: list[str] = []  # a few unknown session ids, for the log

    def authorized(self, session_id: str, driver_id: str, cp_id: str) -> bool:
        """Record a session; False when it was already known (a duplicate response)."""
        if session_id in self._sessions:
            return False
        self._sessions[session_id] = _Session(driver_id, cp_id)
        return True

    def telemetry(self, session_id: str, seq: int) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            session.seqs.append(seq)

    def ticket(self, session_id: str, last_seq: int) -> bool:
        """Record a ticket; True when it is the session's first."""
        session = self._sessions.get(session_id)
        if session is None:
            self._unknown_tickets += 1
            if len(self.unknown_examples) < 5:
                self.unknown_examples.append(session_id)
            return False
        session.tickets += 1
        if session.tickets == 1:
            session.last_seq = last_seq
        return session.tickets == 1

    def open_sessions(self) -> int:
        return sum(1 for s in self._sessions.values() if s.tickets == 0)

    def check(self) -> LedgerCheck:
        gaps = dups = telemetry = 0
        for session in self._sessions.values():
            seen = Counter(session.seqs)
            telemetry += len(session.seqs)
            dups += sum(n - 1 for n in seen.values() if n > 1)
            if session.last_seq is not None:
                gaps += sum(1 for seq in range(1, session.last_seq + 1) if seq not in seen)
        return LedgerCheck(
            sessions=len(self._sessions),
            tickets=sum(min(s.tickets, 1) for s in self._sessions.values()),
            missing_tickets=sum(1 for s in self._sessions.values() if s.tickets == 0),
            duplicate_tickets=sum(s.tickets - 1 for s in self._sessions.values() if s.tickets > 1),
            unknown_tickets=self._unknown_tickets,
            telemetry=telemetry,
            seq_gaps=gaps,
            seq_duplicates=dups,
        )
