"""Supply authorization: the decision for one request, as pure logic.

The order of the checks is the one docs/interfaces.md gives: the CP exists and
is ACTIVE, the driver has no running session, the request has not expired.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from evproto.messages import Origin, SupplyRequest
from evproto.states import CpState
from evproto.vocabulary import manual_driver_id

__all__ = ["Decision", "DenyCode", "FleetView", "decide", "driver_id_of"]


class DenyCode(enum.StrEnum):
    """Short codes for metrics labels; the reason text is for people."""

    UNKNOWN_CP = "unknown_cp"
    CP_SUPPLYING = "cp_supplying"
    CP_WAITING = "cp_waiting"
    CP_STOPPED = "cp_stopped"
    CP_BROKEN = "cp_broken"
    CP_DISCONNECTED = "cp_disconnected"
    DRIVER_BUSY = "driver_busy"
    EXPIRED = "expired"
    NONE_AVAILABLE = "none_available"
    UNKNOWN_TOKEN = "unknown_token"
    BAD_REQUEST = "bad_request"


AUTHORIZED_CODE = "ok"


class FleetView(Protocol):
    """What a decision needs to know about the CPs and the running sessions."""

    def state_of(self, cp_id: str) -> CpState | None: ...
    def next_available(self) -> str | None: ...
    def session_cp_of(self, driver_id: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Decision:
    authorized: bool
    cp_id: str | None
    driver_id: str
    code: str
    reason: str


_UNAVAILABLE: dict[CpState, tuple[DenyCode, str]] = {
    CpState.SUPPLYING: (DenyCode.CP_SUPPLYING, "{cp} is supplying another vehicle"),
    CpState.WAITING_FOR_SUPPLY: (DenyCode.CP_WAITING, "{cp} is waiting for another vehicle"),
    CpState.STOPPED: (DenyCode.CP_STOPPED, "{cp} is out of order (stopped by the operator)"),
    CpState.BROKEN_DOWN: (DenyCode.CP_BROKEN, "{cp} is broken down"),
    CpState.DISCONNECTED: (DenyCode.CP_DISCONNECTED, "{cp} is disconnected"),
}


def driver_id_of(request: SupplyRequest, token_owner: str | None = None) -> str:
    """The session's driver: the requester, ``manual@<cp>`` for a supply started at the CP,
    or for an idToken presented at a station the driver the token is attached to."""
    if request.origin is Origin.STATION and token_owner is not None:
        return token_owner
    if request.origin is not Origin.DRIVER and request.cp_id is not None:
        return manual_driver_id(request.cp_id)
    return request.requester_id


def decide(
    request: SupplyRequest, fleet: FleetView, now: float, token_owner: str | None = None
) -> Decision:
    """``token_owner``: the driver of the request's idToken (None: unknown or no token)."""
    driver = driver_id_of(request, token_owner)

    def deny(code: DenyCode, reason: str, cp_id: str | None = request.cp_id) -> Decision:
        return Decision(False, cp_id, driver, code.value, reason)

    if request.origin is Origin.STATION and token_owner is None:
        return deny(DenyCode.UNKNOWN_TOKEN, "the idToken belongs to no driver")
    cp_id = request.cp_id
    if cp_id is None:
        if request.origin is not Origin.DRIVER:
            return deny(DenyCode.BAD_REQUEST, "a supply at the CP must name its charging point")
        cp_id = fleet.next_available()
        if cp_id is None:
            return deny(DenyCode.NONE_AVAILABLE, "no charging point is available")
    state = fleet.state_of(cp_id)
    if state is None:
        return deny(DenyCode.UNKNOWN_CP, f"{cp_id} is not a known charging point")
    busy_at = fleet.session_cp_of(driver)
    if state is not CpState.ACTIVE:
        if busy_at == cp_id and state in (CpState.SUPPLYING, CpState.WAITING_FOR_SUPPLY):
            # the CP is busy with this very driver: say that, not "another vehicle"
            return deny(DenyCode.DRIVER_BUSY, f"driver {driver} already has a session at {cp_id}")
        code, template = _UNAVAILABLE[state]
        return deny(code, template.format(cp=cp_id), cp_id)
    if busy_at is not None:
        return deny(
            DenyCode.DRIVER_BUSY, f"driver {driver} already has a session at {busy_at}", cp_id
        )
    age = now - request.sent_at
    if age > request.ttl_s:
        return deny(
            DenyCode.EXPIRED,
            f"the request expired ({age:.0f} s old, time to live {request.ttl_s:.0f} s)",
            cp_id,
        )
    return Decision(True, cp_id, driver, AUTHORIZED_CODE, "authorized")
