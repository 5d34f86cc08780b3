"""One connector (1.6) or EVSE (2.0.1) of a station: a CP of the network.

Plain state, no I/O: what the central authorized for it, the running
transaction, and why the gateway asked the station to stop (so the ticket
says the same thing the engine's would).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from evproto.messages import Directive, Outcome

__all__ = ["Connector", "ConnectorStatus", "PendingSession", "StopCause", "cp_id_of", "id_tag_of"]

_ID_TAG_LEN = 20  # OCPP 1.6 idTag is CiString20


class ConnectorStatus(enum.StrEnum):
    """The station's status of a connector, reduced to what the central needs."""

    AVAILABLE = "available"
    OCCUPIED = "occupied"  # preparing, charging, suspended, finishing, reserved
    FAULTED = "faulted"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class StopCause:
    """Why the gateway asked a station to stop a transaction."""

    outcome: Outcome
    reason: str


@dataclass(slots=True)
class PendingSession:
    """A session the central authorized (START directive), waiting for the station's start."""

    session_id: str
    driver_id: str
    price: float
    id_tag: str
    max_kwh: float | None = None
    max_eur: float | None = None
    max_minutes: float | None = None
    remote: bool = True  # the gateway asked the station to start it
    remote_start_id: int = 0

    @classmethod
    def of(cls, directive: Directive, *, remote: bool, remote_start_id: int) -> PendingSession:
        assert directive.session_id is not None and directive.driver_id is not None
        return cls(
            session_id=directive.session_id,
            driver_id=directive.driver_id,
            price=directive.price or 0.0,
            id_tag=id_tag_of(directive.session_id),
            max_kwh=directive.max_kwh,
            max_eur=directive.max_eur,
            max_minutes=directive.max_minutes,
            remote=remote,
            remote_start_id=remote_start_id,
        )


@dataclass(slots=True)
class Connector:
    number: int
    cp_id: str
    status: ConnectorStatus = ConnectorStatus.AVAILABLE
    fault: str = ""
    price: float | None = None
    stopped_by_operator: bool = False
    pending: PendingSession | None = None
    tx_id: str | None = None  # the running transaction
    stop_cause: StopCause | None = None  # set when the gateway asked for the stop
    stop_requested: bool = False
    authorizing: int = 0  # idToken authorizations in flight for this connector
    limits: dict[str, float | None] = field(default_factory=dict)


def cp_id_of(station_id: str, number: int) -> str:
    return f"{station_id}-{number}"


def id_tag_of(session_id: str) -> str:
    """The idTag a remote start carries: the session's first characters (no driver id)."""
    return session_id[:_ID_TAG_LEN]
