"""The derived CP state and the registry that keeps it."""

from __future__ import annotations

import pytest
from evcentral.records import SessionRecord, SessionStatus
from evcentral.registry import ChargingPoint, Registry, derive_state
from evproto.messages import Origin
from evproto.states import CpState, Health


@pytest.mark.parametrize(
    ("connected", "health", "out_of_service", "session", "expected"),
    [
        (False, Health.OK, False, None, CpState.DISCONNECTED),
        (False, Health.KO, True, SessionStatus.SUPPLYING, CpState.DISCONNECTED),
        (True, Health.KO, False, None, CpState.BROKEN_DOWN),
        (True, Health.UNREACHABLE, True, SessionStatus.SUPPLYING, CpState.BROKEN_DOWN),
        (True, None, False, None, CpState.BROKEN_DOWN),
        (True, Health.OK, True, SessionStatus.SUPPLYING, CpState.STOPPED),
        (True, Health.OK, False, SessionStatus.SUPPLYING, CpState.SUPPLYING),
        (True, Health.OK, False, SessionStatus.AUTHORIZED, CpState.WAITING_FOR_SUPPLY),
        (True, Health.OK, False, None, CpState.ACTIVE),
    ],
)
def test_derive_state(
    connected: bool,
    health: Health | None,
    out_of_service: bool,
    session: SessionStatus | None,
    expected: CpState,
) -> None:
    state = derive_state(
        connected=connected, health=health, out_of_service=out_of_service, session_status=session
    )
    assert state is expected


class Link:
    def __init__(self, cp_id: str) -> None:
        self.cp_id = cp_id
        self.closed_because = ""

    def close_soon(self, reason: str) -> None:
        self.closed_because = reason


def cp(cp_id: str) -> ChargingPoint:
    return ChargingPoint(
        cp_id=cp_id,
        location="Bay",
        price=0.3,
        out_of_service=False,
        stored_key="k",
        registered_at=0.0,
    )


def session(cp_id: str, driver: str = "D1") -> SessionRecord:
    return SessionRecord(
        session_id=f"s-{cp_id}",
        cp_id=cp_id,
        driver_id=driver,
        origin=Origin.DRIVER,
        status=SessionStatus.AUTHORIZED,
        authorized_at=0.0,
        price=0.3,
    )


def test_registry_publishes_only_changes_and_counts_states() -> None:
    published: list[tuple[str, CpState | None, CpState]] = []
    registry = Registry(lambda c, old: published.append((c.cp_id, old, c.state)))
    one = cp("CP-1")
    registry.add(one)
    assert published == [("CP-1", None, CpState.DISCONNECTED)]
    registry.attach_link(one, Link("CP-1"), Health.OK)
    registry.refresh(one)  # nothing changed: nothing published
    assert published[-1] == ("CP-1", CpState.DISCONNECTED, CpState.ACTIVE)
    assert len(published) == 2
    assert registry.counts[CpState.ACTIVE] == 1 and registry.counts[CpState.DISCONNECTED] == 0
    assert registry.connected == 1


def test_a_new_link_replaces_and_closes_the_old_one() -> None:
    registry = Registry()
    one = cp("CP-1")
    registry.add(one)
    first, second = Link("CP-1"), Link("CP-1")
    registry.attach_link(one, first, Health.OK)
    registry.attach_link(one, second, Health.OK)
    assert first.closed_because.startswith("replaced")
    assert not registry.detach_link(one, first)  # the old link ending changes nothing
    assert one.state is CpState.ACTIVE
    assert registry.detach_link(one, second)
    assert one.state is CpState.DISCONNECTED and registry.connected == 0


def test_next_available_follows_the_states() -> None:
    registry = Registry()
    for cp_id in ("CP-1", "CP-2"):
        registry.add(cp(cp_id))
        registry.attach_link(registry.cps[cp_id], Link(cp_id), Health.OK)
    assert registry.next_available() == "CP-1"
    registry.attach_session(registry.cps["CP-1"], session("CP-1"))
    assert registry.state_of("CP-1") is CpState.WAITING_FOR_SUPPLY
    assert registry.next_available() == "CP-2"
    assert registry.session_cp_of("D1") == "CP-1"
    registry.detach_session(registry.cps["CP-1"].session)  # type: ignore[arg-type]
    assert registry.session_cp_of("D1") is None
    assert registry.state_of("CP-1") is CpState.ACTIVE
