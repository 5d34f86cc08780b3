"""One supply request, end to end: a real evdriver process, the real broker, a scripted central."""

from __future__ import annotations

import itertools
import signal

import pytest
from evproto.messages import Outcome
from evproto.topics import Topic, partition_for
from evstack.broker import free_port

pytestmark = pytest.mark.e2e


async def test_completed_session_shows_progress_and_ticket(
    central, drivers, unique, script
) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(steps=3)
    driver = await drivers.run(driver_id, "request", cp, "--max-kwh", "5")

    assert driver.proc.returncode == 0, driver.stderr
    out = driver.stdout
    assert f"Authorized at {cp} at 0.30 €/kWh" in out
    progress = [line for line in driver.lines if "kWh" in line and cp in line and "€" in line]
    assert len(progress) >= 3
    assert "0.030 kWh" in out
    assert "outcome   completed" in out
    assert "\x1b[" not in out  # no colour codes without a terminal
    (request,) = central.requests
    assert request.requester_id == driver_id and request.cp_id == cp and request.max_kwh == 5


async def test_json_events_parse_line_by_line(central, drivers, unique, script) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(steps=2)
    driver = await drivers.run(driver_id, "--json", "request", cp)

    assert driver.proc.returncode == 0, driver.stderr
    events = driver.events()
    kinds = [e["event"] for e in events]
    assert kinds[:3] == ["requested", "authorized", "started"]
    assert kinds.count("progress") == 2 and kinds[-1] == "ticket"
    ticket = events[-1]
    assert ticket["outcome"] == "completed" and ticket["kwh"] == pytest.approx(0.02)
    assert ticket["price"] == pytest.approx(0.30) and ticket["duration_s"] >= 0
    assert all(isinstance(e["ts"], float) for e in events)


async def test_denied_request_shows_the_reason(central, drivers, unique, script) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(deny=f"unknown CP {cp}")
    driver = await drivers.run(driver_id, "request", cp)

    assert driver.proc.returncode == 3
    assert f"Denied at {cp}: unknown CP {cp}" in driver.stdout


async def test_aborted_session_shows_the_fault_and_partial_ticket(
    central, drivers, unique, script
) -> None:
    cp, driver_id = unique("CP"), unique("D")
    fault = "charging point fault"
    central.scripts[cp] = script(steps=2, fault=fault, outcome=Outcome.ABORTED, reason=fault)
    driver = await drivers.run(driver_id, "request", cp)

    assert driver.proc.returncode == 4
    assert f"{cp}: {fault} — waiting for the ticket" in driver.stdout
    assert f"outcome   aborted ({fault})" in driver.stdout
    assert "0.020 kWh" in driver.stdout


async def test_no_answer_says_the_central_may_be_down(central, drivers, unique, script) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(silent=True)
    driver = await drivers.run(driver_id, "--answer-timeout", "1.5", "request", cp)

    assert driver.proc.returncode == 5
    assert (
        "the central did not answer within 1.5 s; it may be down — try again later" in driver.stderr
    )
    (request,) = central.requests
    assert request.ttl_s == 1.5  # the central drops it once expired


async def test_two_drivers_on_one_partition_see_only_their_own_messages(
    central, drivers, unique, script
) -> None:
    # Two driver ids that share a partition of the driver topics: only the key tells them apart.
    first = unique("D")
    second = next(
        f"{first}x{n}"
        for n in itertools.count()
        if partition_for(f"{first}x{n}", Topic.DRIVER_UPDATES.partitions)
        == partition_for(first, Topic.DRIVER_UPDATES.partitions)
    )
    cp_a, cp_b = unique("CPA"), unique("CPB")
    central.scripts[cp_a] = script(steps=4, step_s=0.25)
    central.scripts[cp_b] = script(steps=4, step_s=0.25)
    a = await drivers.start(first, "--json", "request", cp_a)
    b = await drivers.start(second, "--json", "request", cp_b)
    assert await a.wait() == 0, a.stderr
    assert await b.wait() == 0, b.stderr

    for driver, driver_id, cp in ((a, first, cp_a), (b, second, cp_b)):
        own_session = central.session_of(driver_id).session_id
        events = driver.events()
        assert {e["cp_id"] for e in events} == {cp}
        assert {e["session_id"] for e in events if "session_id" in e} == {own_session}
        assert [e["seq"] for e in events if e["event"] == "progress"] == [1, 2, 3, 4]


async def test_ctrl_c_asks_the_central_to_stop_and_shows_the_ticket(
    central, drivers, unique, script
) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(until_stopped=True, step_s=0.2)
    driver = await drivers.start(driver_id, "request", cp)
    await driver.expect("0.010 kWh")
    driver.signal(signal.SIGINT)

    assert await driver.wait() == 0, driver.stderr
    assert f"Asking the central to stop the supply at {cp}" in driver.stdout
    assert "outcome   completed (stopped by the driver)" in driver.stdout
    (stop,) = central.stops
    assert stop.requester_id == driver_id
    assert stop.session_id == central.session_of(driver_id).session_id


async def test_second_ctrl_c_leaves_at_once_with_the_resume_command(
    central, drivers, unique, script
) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(until_stopped=True, step_s=0.2, ignore_stop=True)
    driver = await drivers.start(driver_id, "--stop-wait", "30", "request", cp)
    await driver.expect("0.010 kWh")
    driver.signal(signal.SIGINT)
    await driver.expect("Asking the central to stop")
    driver.signal(signal.SIGINT)

    assert await driver.wait() == 130
    assert f"evdriver --id {driver_id} watch" in driver.stderr


async def test_stop_command_ends_the_running_supply(central, drivers, unique, script) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(until_stopped=True, step_s=0.2)
    watcher = await drivers.start(driver_id, "request", cp)
    await watcher.expect("0.010 kWh")

    stopper = await drivers.run(driver_id, "stop")
    assert stopper.proc.returncode == 0, stopper.stderr
    assert "outcome   completed (stopped by the driver)" in stopper.stdout
    assert await watcher.wait() == 0
    assert "outcome   completed (stopped by the driver)" in watcher.stdout

    again = await drivers.run(driver_id, "stop")
    assert again.proc.returncode == 0
    assert f"{driver_id} has no running supply." in again.stdout


@pytest.mark.slow
async def test_unreachable_broker_exits_6_with_a_clear_message(drivers, unique) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    args = ("--kafka", nowhere, "--connect-attempts", "1")
    driver = await drivers.run(unique("D"), *args, "request", "CP-1")

    assert driver.proc.returncode == 6
    assert f"cannot reach the Kafka broker at {nowhere}" in driver.stderr
    assert "check --kafka and that the broker is up" in driver.stderr
    assert "%3|" not in driver.stderr  # no librdkafka noise on the user's terminal
    listing = await drivers.run(unique("D"), *args, "--json", "list")
    assert listing.proc.returncode == 6
    (error,) = listing.events()
    assert error["event"] == "error" and error["code"] == "broker_unreachable"


async def test_bad_flags_exit_2_with_a_message(drivers, unique) -> None:
    bad_limit = await drivers.run(unique("D"), "request", "CP-1", "--max-kwh", "-1")
    assert bad_limit.proc.returncode == 2
    assert "must be a number above 0" in bad_limit.stderr
    bad_cp = await drivers.run(unique("D"), "request", "CP 1!")
    assert bad_cp.proc.returncode == 2
    assert "is not a valid id" in bad_cp.stderr
    bad_timeout = await drivers.run(unique("D"), "--answer-timeout", "soon", "list")
    assert bad_timeout.proc.returncode == 2
    assert "invalid value 'soon' for answer_timeout" in bad_timeout.stderr


async def test_an_enrollment_answer_after_enrolling_is_ignored(
    central, drivers, unique, script
) -> None:
    """Twenty drivers enrolling at once saw one exit 1 on a repeated enrollment answer."""
    cp = unique("CP")
    central.scripts[cp] = script(steps=2, step_s=0.2, repeat_enrollment=True)
    driver = await drivers.start(unique("D"), "--json", "request", cp)
    assert await driver.wait() == 0, driver.stderr
    assert [e["seq"] for e in driver.events() if e["event"] == "progress"] == [1, 2]
