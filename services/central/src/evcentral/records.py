"""What the central keeps about charging points and sessions (in memory and in SQLite)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from evproto.messages import Origin, Outcome

__all__ = ["CpRow", "SessionRecord", "SessionStatus"]


class SessionStatus(enum.StrEnum):
    AUTHORIZED = "authorized"  # waiting for the vehicle to be plugged
    SUPPLYING = "supplying"
    ENDED = "ended"  # ticket stored; nothing changes it any more


@dataclass(slots=True)
class CpRow:
    """The persisted part of a charging point."""

    cp_id: str
    location: str
    price: float
    out_of_service: bool
    stored_key: str
    registered_at: float
    last_seen: float | None = None
    record_key: str = ""  # hex; proves the CP's Kafka records (evproto.proofs)


@dataclass(slots=True, eq=False)
class SessionRecord:
    session_id: str
    cp_id: str
    driver_id: str
    origin: Origin
    status: SessionStatus
    authorized_at: float
    price: float
    request_id: str = ""
    started_at: float | None = None
    ended_at: float | None = None
    kwh: float = 0.0
    eur: float = 0.0
    last_seq: int = 0
    elapsed_s: float = 0.0
    outcome: Outcome | None = None
    reason: str = ""
    max_kwh: float | None = None
    max_eur: float | None = None
    max_minutes: float | None = None
    power_kw: float | None = None  # as the CP reports it (telemetry); bounds its ticket
    ended_by: str = ""  # the consumed record whose ticket ended it ("topic:partition:offset")

    @property
    def open(self) -> bool:
        return self.status is not SessionStatus.ENDED

    @property
    def relayed(self) -> bool:
        """Manual sessions (started at the CP) have no driver to tell."""
        return self.origin is not Origin.MANUAL
