"""R4: a driver killed mid-session and restarted with the same id recovers its session."""

from __future__ import annotations

import json
import signal

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_killed_driver_restarted_shows_the_ticket_it_missed(
    central, drivers, unique, script, wait_until
) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(steps=6, step_s=0.3)
    first = await drivers.start(driver_id, "request", cp)
    await first.expect("0.010 kWh")
    first.signal(signal.SIGKILL)
    await first.wait()
    session = central.session_of(driver_id)
    await wait_until(lambda: session.ticket is not None, 20, "the scripted engine's ticket")
    state = json.loads((drivers.state_dir / f"{driver_id}.json").read_text())
    assert state["status"] == "supplying" and state["session_id"] == session.session_id

    again = await drivers.run(driver_id, "watch")

    assert again.proc.returncode == 0, again.stderr
    assert f"Resuming your session at {cp} (supplying" in again.stdout
    assert f"Ticket for session {session.session_id[:8]} at {cp}" in again.stdout
    assert "0.060 kWh" in again.stdout and "outcome   completed" in again.stdout
    assert len(central.requests) == 1  # nothing was requested twice

    # Shown once: the next start finds nothing unfinished.
    later = await drivers.run(driver_id, "watch")
    assert f"{driver_id} has no running supply." in later.stdout
    assert "Your last ticket:" in later.stdout


async def test_restarted_driver_follows_the_running_session_live(
    central, drivers, unique, script
) -> None:
    cp, next_cp, driver_id = unique("CP"), unique("CPN"), unique("D")
    central.scripts[cp] = script(steps=8, step_s=0.4)
    central.scripts[next_cp] = script(steps=1)
    first = await drivers.start(driver_id, "--json", "request", cp)
    await first.expect('"seq": 1')
    first.signal(signal.SIGKILL)
    await first.wait()

    # A plain new request first shows the unfinished session to its end, then goes on.
    again = await drivers.run(driver_id, "--json", "request", next_cp)

    assert again.proc.returncode == 0, again.stderr
    events = again.events()
    assert events[0]["event"] == "resumed" and events[0]["cp_id"] == cp
    resumed_progress = [e["seq"] for e in events if e["event"] == "progress" and e["cp_id"] == cp]
    assert resumed_progress and resumed_progress == sorted(set(resumed_progress))
    assert resumed_progress[-1] == 8
    tickets = [e for e in events if e["event"] == "ticket"]
    assert [t["cp_id"] for t in tickets] == [cp, next_cp]
    kinds = [e["event"] for e in events]
    assert kinds.index("requested") > kinds.index("ticket")
