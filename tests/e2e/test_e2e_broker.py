"""R5: the broker stops and starts again on the same port.

The embedded broker keeps messages in memory only, so it comes back empty:
what it held is gone (the conservation audit then covers what follows the
restart). A production Kafka comes back with its topics; the first test plays
that (the topics made again as Strimzi's topic operator would), the second
leaves the topics to the services, as ``make run`` does.
"""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import pytest
from e2e_driver import DriverResult
from e2e_system import System
from evstack.waiting import wait_until

pytestmark = pytest.mark.e2e

# The driver during the outage gives up quickly.
QUICK = ("--connect-attempts", "2")


def _not_ready(system: System) -> dict[str, Any] | None:
    answer = system.api.readyz()
    return answer.body if answer.status == 503 else None


def _broker_outage(system: System, *, create_topics: bool, driver_told: bool = False) -> float:
    """A supply, the broker down (readiness says so, nothing crashes; with
    ``driver_told`` a driver is told), the broker back; returns when it came back."""
    system.start(cps=2)
    assert system.request("hal", "CP-0", max_kwh=0.005).wait(30).exit_code == 0

    system.stop_broker()
    outage = wait_until(partial(_not_ready, system), 15, "/readyz reports the outage")
    assert outage["broker"] is False and outage["ready"] is False, outage
    if driver_told:
        ian = system.driver("ian", *QUICK, "request", "CP-0").wait(60)
        assert ian.exit_code == 6, ian
        assert [e["code"] for e in ian.of("error")] == ["broker_unreachable"], ian
    assert not system.unexpected_exits()

    back_at = time.time()
    system.start_broker_again(create_topics=create_topics)
    return back_at


def _ready_again(system: System) -> None:
    wait_until(lambda: system.api.readyz().status == 200, 30, "/readyz is ready again")
    system.wait_all_active(10)
    assert not system.unexpected_exits()


def _new_session(system: System) -> DriverResult:
    """A driver with the default patience (30 s for the central's answer)."""
    return system.request("jo", "CP-1", max_kwh=0.005).wait(90)


def test_r5_a_broker_outage_is_reported_crashes_nothing_and_all_resume(system: System) -> None:
    back_at = _broker_outage(system, create_topics=True, driver_told=True)
    _ready_again(system)
    jo = _new_session(system)
    assert jo.exit_code == 0, jo
    system.check_conservation(since=back_at)


def test_r5_an_empty_broker_gets_its_topics_back_from_the_services(system: System) -> None:
    back_at = _broker_outage(system, create_topics=False)
    _ready_again(system)
    jo = _new_session(system)
    assert jo.exit_code == 0, jo
    system.check_conservation(since=back_at)
