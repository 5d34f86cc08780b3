"""Supply authorization decisions: every denial reason, and the order of the checks."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from evcentral.authorization import DenyCode, decide
from evproto.messages import Origin, SupplyRequest
from evproto.states import CpState

NOW = 1_000_000.0


@dataclass
class Fleet:
    states: dict[str, CpState] = field(default_factory=dict)
    busy: dict[str, str] = field(default_factory=dict)  # driver -> CP of its session

    def state_of(self, cp_id: str) -> CpState | None:
        return self.states.get(cp_id)

    def next_available(self) -> str | None:
        return next((c for c, s in self.states.items() if s is CpState.ACTIVE), None)

    def session_cp_of(self, driver_id: str) -> str | None:
        return self.busy.get(driver_id)


def request(cp_id: str | None = "CP-1", **kw: object) -> SupplyRequest:
    fields: dict[str, object] = {
        "request_id": "r1",
        "requester_id": "D1",
        "origin": Origin.DRIVER,
        "cp_id": cp_id,
        "sent_at": NOW - 1,
    }
    fields.update(kw)
    return SupplyRequest(**fields)  # type: ignore[arg-type]


def test_an_active_cp_and_a_free_driver_is_authorized() -> None:
    decision = decide(request(), Fleet({"CP-1": CpState.ACTIVE}), NOW)
    assert decision.authorized
    assert (decision.cp_id, decision.driver_id, decision.code) == ("CP-1", "D1", "ok")


def test_unknown_cp_is_denied() -> None:
    decision = decide(request("CP-9"), Fleet({"CP-1": CpState.ACTIVE}), NOW)
    assert not decision.authorized
    assert decision.code == DenyCode.UNKNOWN_CP
    assert decision.reason == "CP-9 is not a known charging point"


@pytest.mark.parametrize(
    ("state", "code", "reason"),
    [
        (CpState.SUPPLYING, DenyCode.CP_SUPPLYING, "CP-1 is supplying another vehicle"),
        (CpState.WAITING_FOR_SUPPLY, DenyCode.CP_WAITING, "CP-1 is waiting for another vehicle"),
        (CpState.STOPPED, DenyCode.CP_STOPPED, "CP-1 is out of order (stopped by the operator)"),
        (CpState.BROKEN_DOWN, DenyCode.CP_BROKEN, "CP-1 is broken down"),
        (CpState.DISCONNECTED, DenyCode.CP_DISCONNECTED, "CP-1 is disconnected"),
    ],
)
def test_an_unavailable_cp_is_denied_with_its_state(
    state: CpState, code: DenyCode, reason: str
) -> None:
    decision = decide(request(), Fleet({"CP-1": state}), NOW)
    assert (decision.authorized, decision.code, decision.reason) == (False, code, reason)


def test_a_driver_with_a_session_elsewhere_is_denied() -> None:
    fleet = Fleet({"CP-1": CpState.ACTIVE, "CP-2": CpState.SUPPLYING}, busy={"D1": "CP-2"})
    decision = decide(request(), fleet, NOW)
    assert decision.code == DenyCode.DRIVER_BUSY
    assert decision.reason == "driver D1 already has a session at CP-2"


def test_asking_again_at_ones_own_cp_names_the_drivers_session() -> None:
    fleet = Fleet({"CP-1": CpState.WAITING_FOR_SUPPLY}, busy={"D1": "CP-1"})
    decision = decide(request(), fleet, NOW)
    assert decision.code == DenyCode.DRIVER_BUSY
    assert "already has a session at CP-1" in decision.reason


def test_an_expired_request_is_denied() -> None:
    decision = decide(request(sent_at=NOW - 45, ttl_s=30), Fleet({"CP-1": CpState.ACTIVE}), NOW)
    assert decision.code == DenyCode.EXPIRED
    assert decision.reason == "the request expired (45 s old, time to live 30 s)"


def test_any_cp_takes_the_next_available_one() -> None:
    fleet = Fleet({"CP-1": CpState.SUPPLYING, "CP-2": CpState.ACTIVE})
    decision = decide(request(None), fleet, NOW)
    assert decision.authorized and decision.cp_id == "CP-2"


def test_any_cp_with_none_available_is_denied() -> None:
    decision = decide(request(None), Fleet({"CP-1": CpState.BROKEN_DOWN}), NOW)
    assert decision.code == DenyCode.NONE_AVAILABLE
    assert decision.reason == "no charging point is available"


def test_a_manual_request_supplies_for_manual_at_the_cp() -> None:
    manual = request("CP-1", origin=Origin.MANUAL, requester_id="CP-1")
    decision = decide(manual, Fleet({"CP-1": CpState.ACTIVE}), NOW)
    assert decision.authorized and decision.driver_id == "manual@CP-1"


def test_a_manual_request_must_name_its_cp() -> None:
    decision = decide(request(None, origin=Origin.MANUAL), Fleet({"CP-1": CpState.ACTIVE}), NOW)
    assert decision.code == DenyCode.BAD_REQUEST


def test_the_cp_is_checked_before_the_driver_and_the_expiry() -> None:
    fleet = Fleet({"CP-1": CpState.BROKEN_DOWN}, busy={"D1": "CP-2"})
    decision = decide(request(sent_at=NOW - 100), fleet, NOW)
    assert decision.code == DenyCode.CP_BROKEN


def test_an_id_token_at_a_station_is_authorized_as_the_driver_it_belongs_to() -> None:
    station = request(requester_id="ST1-1", cp_id="ST1-1", origin=Origin.STATION, id_token="04A2")
    decision = decide(station, Fleet({"ST1-1": CpState.ACTIVE}), NOW, token_owner="alice")
    assert decision.authorized and decision.driver_id == "alice"
    busy = decide(station, Fleet({"ST1-1": CpState.ACTIVE}, {"alice": "CP-2"}), NOW, "alice")
    assert busy.code == DenyCode.DRIVER_BUSY


def test_an_id_token_of_no_driver_is_denied() -> None:
    station = request(requester_id="ST1-1", cp_id="ST1-1", origin=Origin.STATION, id_token="FFFF")
    decision = decide(station, Fleet({"ST1-1": CpState.ACTIVE}), NOW, token_owner=None)
    assert not decision.authorized
    assert decision.code == DenyCode.UNKNOWN_TOKEN
