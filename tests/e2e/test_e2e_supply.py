"""Supplies as drivers and people at the charging point see them (M5–M8, M11, M12)."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
from e2e_system import System
from evstack.waiting import wait_until

pytestmark = pytest.mark.e2e

PRICE = 0.30  # the central's default price: no CP proposes one


def test_a_driver_gets_progress_and_a_ticket_and_the_operator_sees_it(system: System) -> None:
    system.start(cps=2)
    driver = system.request("alice", "CP-0", max_kwh=0.02)

    tile = system.wait_supplying("CP-0", "alice")  # the tile shows the driver and kWh so far
    assert tile["colour"] == "green"
    result = driver.wait(30)

    assert result.exit_code == 0, result
    kinds = [e["event"] for e in result.events]
    assert kinds[:3] == ["requested", "authorized", "started"], kinds
    progress = result.of("progress")
    assert progress, "no progress shown"
    assert [p["seq"] for p in progress] == sorted({p["seq"] for p in progress})
    ticket = result.ticket
    assert kinds[-1] == "ticket"
    assert ticket["outcome"] == "completed"
    assert ticket["kwh"] == pytest.approx(0.02)
    assert ticket["eur"] == pytest.approx(0.02 * PRICE)
    assert ticket["cp_id"] == "CP-0"

    [session] = system.api.sessions(driver_id="alice")
    assert session["status"] == "ended"
    assert session["outcome"] == "completed"
    assert session["session_id"] == ticket["session_id"]
    assert session["kwh"] == pytest.approx(0.02)
    assert system.wait_cp("CP-0", 5, state="ACTIVE")["driver_id"] is None
    system.check_conservation()


def test_every_process_drains_and_exits_zero_on_sigterm(system: System) -> None:
    system.start(cps=1)
    assert system.request("bob", "CP-0", max_kwh=0.005).wait(30).exit_code == 0
    system.check_conservation()
    codes = system.shutdown()
    assert codes and all(code == 0 for code in codes.values()), codes


def test_each_unavailable_charging_point_is_denied_with_its_reason(system: System) -> None:
    system.start(cps=5)
    alice = system.request("alice", "CP-0")  # no limit: she stops it herself at the end
    system.wait_supplying("CP-0", "alice")
    assert system.api.stop("CP-1").status == 202
    assert system.ctl("CP-2", "ko").ok
    system.kill(system.cp("CP-3").monitor)
    system.wait_cp("CP-1", 5, state="STOPPED", colour="orange", label="Out of Order")
    system.wait_cp("CP-2", 5, state="BROKEN_DOWN", colour="red")
    system.wait_cp("CP-3", 5, state="DISCONNECTED", colour="grey")

    listed = system.driver("zoe", "list").wait(30)
    assert listed.exit_code == 0, listed
    available = {cp["cp_id"]: cp["available"] for cp in listed.of("cp")}
    assert available == {
        "CP-0": False,
        "CP-1": False,
        "CP-2": False,
        "CP-3": False,
        "CP-4": True,
    }, listed

    # (driver, CP, what the denial says, the central's metric label)
    cases = [
        ("bob", "CP-0", "supplying", "cp_supplying"),
        ("carol", "CP-1", "out of order", "cp_stopped"),
        ("dave", "CP-2", "broken", "cp_broken"),
        ("erin", "CP-3", "disconnected", "cp_disconnected"),
        ("frank", "CP-99", "not a known charging point", "unknown_cp"),
    ]
    runs = [system.request(driver, cp) for driver, cp, _, _ in cases]
    # alice again, from a second phone (its own session state, her credential copied
    # over: the id alone would not do): she already has a session
    phone = system.workdir / "alice-phone"
    phone.mkdir()
    shutil.copy(system.workdir / "drivers" / "alice.secret", phone / "alice.secret")
    runs.append(system.request("alice", "CP-4", state_dir=phone))
    cases.append(("alice", "CP-4", "already has a session", "driver_busy"))

    for (driver, cp, words, _), run in zip(cases, runs, strict=True):
        result = run.wait(30)
        assert result.exit_code == 3, f"{driver} at {cp}: {result}"
        [denied] = result.of("denied")
        assert words in denied["reason"].lower(), f"{driver} at {cp}: {denied}"
        assert not result.of("ticket")
    metrics = system.api.metrics()
    for _, _, _, code in cases:
        counted = metrics.value("evcharging_central_authorizations_total", reason=code)
        assert counted == 1, f"{code}: {counted}"

    stopper = system.driver("alice", "stop")
    assert stopper.wait(30).exit_code == 0
    result = alice.wait(30)
    assert result.exit_code == 0, result
    assert result.ticket["outcome"] == "completed"
    assert result.ticket["kwh"] > 0
    system.check_conservation()


def test_a_manual_supply_at_the_charging_point_ends_with_its_ticket(system: System) -> None:
    system.start(cps=1)
    answer = system.ctl("CP-0", "supply")
    assert answer.exit_code == 0 and answer.ok, answer

    system.wait_supplying("CP-0", "manual@CP-0")
    assert system.ctl("CP-0", "unplug").ok

    def ended() -> dict[str, Any] | None:
        sessions = system.api.sessions(cp_id="CP-0")
        return sessions[0] if sessions and sessions[0]["status"] == "ended" else None

    session = wait_until(ended, 10, "the manual session ends in /api/sessions")
    assert session["driver_id"] == "manual@CP-0"
    assert session["origin"] == "manual"
    assert session["outcome"] == "completed"
    assert session["kwh"] > 0
    system.wait_cp("CP-0", 5, state="ACTIVE", driver_id=None)
    system.check_conservation()


def test_a_vehicle_never_plugged_in_is_cancelled_at_the_start_timeout(system: System) -> None:
    system.start(cps=1, central_args=("--start-timeout", "2"), engine_args=("--plug-delay", "-1"))
    result = system.request("kim", "CP-0").wait(30)
    assert result.exit_code == 4, result
    assert result.ticket["outcome"] == "cancelled"
    assert "plugged" in result.ticket["reason"]
    assert result.ticket["kwh"] == 0
    system.wait_cp("CP-0", 5, state="ACTIVE", driver_id=None)
    assert system.engine_status("CP-0")["session_id"] is None  # the engine dropped it too
    system.check_conservation()


def test_a_batch_requests_each_line_four_seconds_after_the_previous_ends(system: System) -> None:
    system.start(cps=2)
    batch = system.workdir / "batch.txt"
    batch.write_text("CP-0\nCP-404  # no such CP\nany\n")
    run = system.driver("gina", "batch", str(batch))

    # the person at the charging point unplugs once energy has flowed
    unplugged: set[str] = set()

    def next_supply() -> dict[str, Any] | None:
        cps = system.api.cps().values()
        return next(
            (
                c
                for c in cps
                if c["driver_id"] == "gina" and c["kwh"] and c["session_id"] not in unplugged
            ),
            None,
        )

    for _line in (1, 3):
        tile = wait_until(next_supply, 30, "gina's next supply delivers energy")
        assert system.ctl(tile["cp_id"], "unplug").ok
        unplugged.add(tile["session_id"])
    result = run.wait(30)

    assert result.exit_code == 3, result  # the first line that did not complete was denied
    [summary] = result.of("summary")
    assert [r["outcome"] for r in summary["rows"]] == ["completed", "denied", "completed"]
    requested = result.of("requested")
    concluded = [e for e in result.events if e["event"] in ("ticket", "denied")]
    assert len(requested) == len(concluded) == 3, result
    for before, after in zip(concluded, requested[1:], strict=False):
        gap = after["ts"] - before["ts"]
        assert 3.95 <= gap < 10, f"{gap:.2f} s between a conclusion and the next request"
    system.check_conservation()
