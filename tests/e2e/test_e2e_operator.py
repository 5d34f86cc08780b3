"""The operator's STOP and RESUME, for one charging point and for all (M9)."""

from __future__ import annotations

import pytest
from e2e_system import System

pytestmark = pytest.mark.e2e

OPERATOR_STOP = "stopped by the operator"


def test_stop_during_a_supply_aborts_it_and_resume_brings_the_cp_back(system: System) -> None:
    system.start(cps=2)
    alice = system.request("alice", "CP-0")
    system.wait_supplying("CP-0", "alice")

    for token in ("", "not-the-token"):
        refused = system.api.stop("CP-0", token=token)
        assert refused.status == 401 and "error" in refused.body, refused
    assert system.api.cp("CP-0")["state"] == "SUPPLYING"

    stopped = system.api.stop("CP-0")
    assert stopped.status == 202 and stopped.body["cp_id"] == "CP-0", stopped
    result = alice.wait(20)
    assert result.exit_code == 4, result
    ticket = result.ticket
    assert ticket["outcome"] == "aborted"
    assert ticket["reason"] == OPERATOR_STOP
    assert ticket["kwh"] > 0  # the partial ticket: what was supplied is billed
    system.wait_cp("CP-0", 5, state="STOPPED", colour="orange", label="Out of Order")
    assert system.api.cp("CP-1")["state"] == "ACTIVE"

    bob = system.request("bob", "CP-0").wait(30)
    assert bob.exit_code == 3 and "out of order" in bob.of("denied")[0]["reason"], bob

    assert system.api.resume("CP-0").status == 202
    system.wait_cp("CP-0", 5, state="ACTIVE", colour="green")
    carol = system.request("carol", "CP-0", max_kwh=0.005).wait(30)
    assert carol.exit_code == 0, carol
    system.check_conservation()


def test_stop_all_aborts_every_supply_and_resume_all_brings_all_back(system: System) -> None:
    system.start(cps=3)
    drivers = {"CP-0": system.request("alice", "CP-0"), "CP-1": system.request("bob", "CP-1")}
    system.wait_supplying("CP-0", "alice")
    system.wait_supplying("CP-1", "bob")

    stopped = system.api.stop()
    assert stopped.status == 202 and stopped.body == {"affected": 3}, stopped
    for cp_id, run in drivers.items():
        result = run.wait(20)
        assert result.exit_code == 4, f"{cp_id}: {result}"
        assert result.ticket["outcome"] == "aborted"
        assert result.ticket["reason"] == OPERATOR_STOP
    for cp_id in ("CP-0", "CP-1", "CP-2"):
        system.wait_cp(cp_id, 5, state="STOPPED", colour="orange", driver_id=None)

    resumed = system.api.resume()
    assert resumed.status == 202 and resumed.body == {"affected": 3}, resumed
    system.wait_all_active(5)
    system.check_conservation()
