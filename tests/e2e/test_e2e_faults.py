"""Faults at a charging point: engine KO or killed (M3, R2), monitor killed (R3),
and the link between a monitor and the central cut while both stay up."""

from __future__ import annotations

import pytest
from e2e_system import System

pytestmark = pytest.mark.e2e


def test_engine_ko_ends_the_supply_with_a_partial_ticket_and_ok_clears_it(system: System) -> None:
    system.start(cps=1)
    alice = system.request("alice", "CP-0")
    system.wait_supplying("CP-0", "alice")

    assert system.ctl("CP-0", "ko").ok
    system.wait_cp("CP-0", 3, state="BROKEN_DOWN", colour="red")  # R2: within 3 s
    result = alice.wait(15)
    assert result.exit_code == 4, result
    ticket = result.ticket
    assert ticket["outcome"] == "aborted"
    assert "fault" in ticket["reason"]
    assert ticket["kwh"] > 0
    for error in result.of("error"):
        assert error["code"] == "session_error" and "fault" in error["reason"], error

    assert system.ctl("CP-0", "ok").ok
    system.wait_cp("CP-0", 3, state="ACTIVE", colour="green")
    assert system.request("bob", "CP-0", max_kwh=0.005).wait(30).exit_code == 0
    system.check_conservation()


def test_r2_a_killed_engine_breaks_the_cp_and_its_driver_is_told(system: System) -> None:
    system.start(cps=1)
    alice = system.request("alice", "CP-0")
    system.wait_supplying("CP-0", "alice")

    system.kill(system.cp("CP-0").engine)
    system.wait_cp("CP-0", 3, state="BROKEN_DOWN", colour="red")
    alice.wait_for_event("error", 5, code="session_error")
    result = alice.wait(15)
    assert result.exit_code == 4, result
    assert result.ticket["outcome"] == "aborted"
    assert result.ticket["kwh"] > 0  # the partial ticket from the last telemetry

    system.start_again(system.cp("CP-0").engine)
    system.wait_cp("CP-0", 10, state="ACTIVE")
    system.check_conservation()


def test_r3_a_killed_monitor_disconnects_its_cp_only(system: System) -> None:
    system.start(cps=2)
    system.kill(system.cp("CP-0").monitor)
    system.wait_cp("CP-0", 3, state="DISCONNECTED", colour="grey", connected=False)
    assert system.api.cp("CP-1")["state"] == "ACTIVE"

    system.start_again(system.cp("CP-0").monitor)
    system.wait_cp("CP-0", 10, state="ACTIVE", connected=True)
    assert system.request("alice", "CP-0", max_kwh=0.005).wait(30).exit_code == 0
    system.check_conservation()


def test_a_cut_link_to_the_central_does_not_stop_a_running_supply(system: System) -> None:
    system.start(cps=2, proxied=("CP-0",))
    proxy = system.proxies["CP-0"]
    alice = system.request("alice", "CP-0", max_kwh=0.08)  # about 13 s of supply
    system.wait_supplying("CP-0", "alice")

    proxy.cut()
    # no heartbeat for 3 intervals: disconnected (3 s, plus the interval in flight)
    system.wait_cp("CP-0", 4, state="DISCONNECTED", connected=False)
    seq = max(e["seq"] for e in alice.events() if e["event"] == "progress")
    alice.wait_for_event("progress", 5, seq=seq + 2)  # the engine goes on supplying
    proxy.restore()
    system.wait_cp("CP-0", 10, connected=True)

    result = alice.wait(30)
    assert result.exit_code == 0, result
    assert result.ticket["outcome"] == "completed"
    assert result.ticket["kwh"] == pytest.approx(0.08)
    system.wait_cp("CP-0", 5, state="ACTIVE", connected=True)
    system.check_conservation()
