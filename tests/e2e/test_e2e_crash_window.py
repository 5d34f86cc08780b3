"""A central killed after it handled a request but before the broker acknowledged
what it published in answer (issue 15, item 4): after its restart the answer and
the START still reach the driver and the engine, exactly once; so does the ticket it
relayed, the ticket it issued itself when a timer ended the session, and an
operator's STOP it had answered with 202.

The broker advertises a proxy (e2e_kafka_hold.ProduceHold) that keeps back the
central's Produce requests: the decision is in the central's database, the
broker has none of its answers, and the request's offset is not committed (or,
for a timer's ticket, nothing consumed caused it: only the outbox has it).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e_kafka_hold import ProduceHold
from e2e_system import System
from evstack.broker import EmbeddedBroker
from evstack.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def proxy(system: System) -> Iterator[ProduceHold]:
    """The broker restarted behind a ProduceHold proxy; central and CP-0 started."""
    yield from _behind_a_hold(system)


@pytest.fixture
def proxy_never_plugged(system: System) -> Iterator[ProduceHold]:
    """As ``proxy``, but no vehicle is ever plugged at CP-0 and the central's start
    timeout is 3 s."""
    yield from _behind_a_hold(
        system, central_args=("--start-timeout", "3"), engine_args=("--plug-delay", "-1")
    )


def _behind_a_hold(system: System, **start: Any) -> Iterator[ProduceHold]:
    stack = system.stack
    hold = ProduceHold(stack.host, stack.kafka_port).start()
    assert stack.broker is not None
    stack.broker.stop()
    stack.broker = EmbeddedBroker(
        stack.kafka_port, stack.host, system.workdir / "broker.log", advertised=hold.address
    )
    stack.broker.start()
    system.start(cps=1, **start)
    yield hold
    hold.close()


def _kill_and_restart_the_central(system: System, proxy: ProduceHold) -> None:
    system.kill(system.central)  # before the broker had what it held back
    proxy.release()
    system.start_again(system.central)


def test_a_central_killed_before_its_answers_are_acknowledged_answers_after_a_restart(
    system: System, proxy: ProduceHold
) -> None:
    # a first supply, unhindered: alice is enrolled (its answer comes from the central too)
    assert system.request("alice", "CP-0", max_kwh=0.005).wait(30).exit_code == 0

    proxy.hold("evcentral")
    driver = system.request("alice", "CP-0", max_kwh=0.01)
    wait_until(
        lambda: len(system.api.sessions(driver_id="alice")) == 2,
        20,
        "the central's decision stored",
    )
    wait_until(lambda: proxy.held_requests > 0, 10, "the central's answers held back")
    _kill_and_restart_the_central(system, proxy)

    result = driver.wait(60)
    assert result.exit_code == 0, result
    assert len(result.of("authorized")) == 1, result
    assert result.ticket["outcome"] == "completed"
    assert all(s["status"] == "ended" for s in system.api.sessions(driver_id="alice"))
    system.check_conservation()


def test_a_central_killed_before_its_relayed_ticket_is_acknowledged_relays_it_after_a_restart(
    system: System, proxy: ProduceHold
) -> None:
    driver = system.request("alice", "CP-0", max_kwh=0.02)  # ~3 s of supply
    driver.wait_for_event("started", 20)

    proxy.hold("evcentral")  # progress, the ticket relayed: none reaches the broker

    def ended() -> bool:
        return any(s["status"] == "ended" for s in system.api.sessions(driver_id="alice"))

    wait_until(ended, 20, "the engine's ticket stored by the central")
    _kill_and_restart_the_central(system, proxy)

    result = driver.wait(60)
    assert result.exit_code == 0, result
    assert result.ticket["outcome"] == "completed"
    system.check_conservation()


def test_a_central_killed_before_its_own_timeout_ticket_is_acknowledged_sends_it_after_a_restart(
    system: System, proxy_never_plugged: ProduceHold
) -> None:
    proxy = proxy_never_plugged
    driver = system.request("kim", "CP-0")
    driver.wait_for_event("authorized", 20)

    proxy.hold("evcentral")  # the start timeout's END_SUPPLY and ticket: held back

    def ended() -> bool:
        return any(s["status"] == "ended" for s in system.api.sessions(driver_id="kim"))

    wait_until(ended, 20, "the start timeout ended the session in the central's database")
    wait_until(lambda: proxy.held_requests > 0, 10, "the central's ticket held back")
    _kill_and_restart_the_central(system, proxy)

    result = driver.wait(60)
    assert result.exit_code == 4, result
    assert result.ticket["outcome"] == "cancelled"  # exactly one ticket shown
    assert "plugged" in result.ticket["reason"]
    wait_until(
        lambda: system.engine_status("CP-0")["session_id"] is None,
        20,
        "the engine dropped the session (its END_SUPPLY sent again)",
    )
    system.wait_cp("CP-0", 10, state="ACTIVE", driver_id=None)
    system.check_conservation()


def test_a_central_killed_before_an_operators_stop_is_acknowledged_sends_it_after_a_restart(
    system: System, proxy: ProduceHold
) -> None:
    proxy.hold("evcentral")  # the STOP directive: held back
    stopped = system.api.stop("CP-0")
    assert stopped.status == 202, stopped  # the operator was told it is done
    wait_until(lambda: proxy.held_requests > 0, 10, "the central's STOP held back")
    assert system.engine_status("CP-0")["state"] == "ACTIVE"
    _kill_and_restart_the_central(system, proxy)

    wait_until(
        lambda: system.engine_status("CP-0")["state"] == "STOPPED",
        30,
        "the engine stopped by the STOP sent again after the restart",
    )
    system.wait_cp("CP-0", 10, state="STOPPED")
    system.check_conservation()
