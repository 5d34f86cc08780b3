"""Restarts: the central killed mid-session (R1), a driver killed (R4), the central
restarted with its database (R6)."""

from __future__ import annotations

import time
from functools import partial

import pytest
from e2e_system import System
from evstack.waiting import hold, wait_until

pytestmark = pytest.mark.e2e


def _central_unreachable(system: System, cp_id: str) -> bool:
    return system.engine_status(cp_id)["central_reachable"] is False


def test_r1_central_killed_mid_session_loses_no_session_and_bills_none_twice(
    system: System,
) -> None:
    system.start(cps=3)
    amy = system.request("amy", "CP-0", max_kwh=0.03)  # ends while the central is down
    ben = system.request("ben", "CP-1", max_kwh=0.1)  # ends after it is back
    cat = system.request("cat", "CP-2")  # runs until she stops it
    for cp_id, driver in (("CP-0", "amy"), ("CP-1", "ben"), ("CP-2", "cat")):
        system.wait_cp(cp_id, 15, state="SUPPLYING", driver_id=driver)

    system.kill(system.central)
    down_since = time.monotonic()
    # the engines finish on their own; the people at the CPs see the central is gone
    for cp_id in ("CP-0", "CP-1", "CP-2"):
        wait_until(
            partial(_central_unreachable, system, cp_id),
            10,
            f"{cp_id} says the central is unreachable",
        )
    wait_until(
        lambda: system.engine_status("CP-0")["session_id"] is None,
        15,
        "amy's supply at CP-0 ends with the central down",
    )
    hold(max(0.0, 10 - (time.monotonic() - down_since)), "the central is down for 10 s")
    system.start_again(system.central)

    for cp_id in ("CP-0", "CP-1", "CP-2"):
        system.wait_cp(cp_id, 15, connected=True)  # the monitors are back
    amy_result = amy.wait(30)
    assert amy_result.exit_code == 0, amy_result
    assert amy_result.ticket["kwh"] == pytest.approx(0.03)
    ben_result = ben.wait(40)
    assert ben_result.exit_code == 0, ben_result
    assert ben_result.ticket["kwh"] == pytest.approx(0.1)
    assert system.driver("cat", "stop").wait(30).exit_code == 0
    cat_result = cat.wait(30)
    assert cat_result.exit_code == 0, cat_result
    assert cat_result.ticket["outcome"] == "completed"
    system.wait_all_active(10)
    system.check_conservation()


def test_r4_a_killed_driver_restarted_shows_its_live_session_or_missed_ticket(
    system: System,
) -> None:
    system.start(cps=2)
    dan = system.request("dan", "CP-0", max_kwh=0.05)  # still running when he is back
    eve = system.request("eve", "CP-1", max_kwh=0.02)  # over before she is back
    dan.wait_for_event("progress", 15)
    eve.wait_for_event("progress", 15)
    dan.kill()
    eve.kill()

    dan_again = system.driver("dan", "watch")
    dan_again.wait_for_event("resumed", 15)
    wait_until(
        lambda: any(s["status"] == "ended" for s in system.api.sessions(driver_id="eve")),
        15,
        "eve's session ends while her phone is off",
    )
    eve_again = system.driver("eve", "watch")

    dan_result = dan_again.wait(30)
    assert dan_result.exit_code == 0, dan_result
    assert dan_result.of("progress"), "no live data after the restart"
    assert dan_result.ticket["kwh"] == pytest.approx(0.05)
    eve_result = eve_again.wait(30)
    assert eve_result.exit_code == 0, eve_result
    assert eve_result.ticket["kwh"] == pytest.approx(0.02)
    assert eve_result.ticket["outcome"] == "completed"
    system.check_conservation()


def test_r6_a_restarted_central_keeps_prices_stops_and_sessions(system: System) -> None:
    system.start(cps=2)
    assert system.request("fay", "CP-0", max_kwh=0.005).wait(30).exit_code == 0
    assert system.api.set_price("CP-0", 0.45).status == 200
    wait_until(
        lambda: system.engine_status("CP-0")["price"] == 0.45,
        5,
        "the engine of CP-0 has the new price",
    )
    assert system.api.stop("CP-1").status == 202
    system.wait_cp("CP-1", 5, state="STOPPED")

    system.restart_central()

    system.wait_cp("CP-0", 15, state="ACTIVE", price=0.45)
    system.wait_cp("CP-1", 15, state="STOPPED", connected=True, label="Out of Order")
    [fay] = system.api.sessions(driver_id="fay")
    assert fay["status"] == "ended" and fay["outcome"] == "completed"
    gus = system.request("gus", "CP-0", max_kwh=0.01).wait(30)
    assert gus.exit_code == 0, gus
    assert gus.ticket["price"] == 0.45
    assert gus.ticket["eur"] == pytest.approx(0.01 * 0.45)
    system.check_conservation()
