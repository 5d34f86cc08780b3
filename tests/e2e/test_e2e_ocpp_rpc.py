"""The gateway with a client nobody here wrote: the npm ``ocpp-rpc`` library under Node
(strict mode: it checks every answer of the gateway against the official schemas),
for OCPP 1.6J and 2.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_ocpp import card_holder, start_gateway
from e2e_ocpp_rpc import NodeStation, install_ocpp_rpc
from e2e_system import System
from evstack.waiting import wait_until

pytestmark = pytest.mark.e2e

PROTOCOLS = ["ocpp1.6", "ocpp2.0.1"]


@pytest.fixture(scope="module")
def node() -> Path:
    return install_ocpp_rpc()


@pytest.fixture
def gateway(system: System) -> Iterator[System]:
    system.start(cps=0)
    start_gateway(system.stack)
    yield system


def station(system: System, node: Path, name: str, protocol: str, scenario: str,
            *extra: str) -> NodeStation:  # fmt: skip
    started = NodeStation(system.stack, node, name, protocol, scenario, *extra)
    wait_until(lambda: started.of("ready") or started.of("error"), 30, f"{name} is ready")
    assert started.of("booted")[0]["status"] == "Accepted", started.events()
    return started


def short(protocol: str) -> str:
    return protocol.replace("ocpp", "").replace(".", "")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_boot_heartbeat_status_and_a_remote_supply_to_a_ticket(
    gateway: System, node: Path, protocol: str
) -> None:
    st = station(gateway, node, f"N{short(protocol)}", protocol, "remote")
    assert st.of("heartbeat")[0]["currentTime"].endswith("Z")
    cp_id = f"{st.station_id}-1"
    gateway.wait_cp(cp_id, 20, state="ACTIVE")
    result = gateway.request("erin", cp_id, max_kwh=0.03).wait(60)
    assert result.exit_code == 0, result
    assert result.ticket["outcome"] == "completed" and result.ticket["kwh"] >= 0.03
    assert st.of("started") and st.of("stopped")[0]["reason"] == "Remote"
    st.stop()
    gateway.check_conservation()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_id_token_at_the_station(gateway: System, node: Path, protocol: str) -> None:
    token = f"CARD{short(protocol)}"
    card_holder(gateway, "fay", token)
    st = station(gateway, node, f"T{short(protocol)}", protocol, "idtoken", token)
    st.wait_for("done", 60)
    assert st.of("authorized")[0]["status"] == "Invalid"
    assert st.of("started")[0]["accepted"] is True

    def ended() -> dict[str, object] | None:
        sessions = gateway.api.sessions(driver_id="fay")
        return sessions[0] if sessions and sessions[0]["status"] == "ended" else None

    session = wait_until(ended, 20, "fay's session ends")
    assert session["outcome"] == "completed" and float(session["kwh"]) > 0
    gateway.check_conservation()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_fault_mid_supply(gateway: System, node: Path, protocol: str) -> None:
    st = station(gateway, node, f"F{short(protocol)}", protocol, "fault")
    cp_id = f"{st.station_id}-1"
    gateway.wait_cp(cp_id, 20, state="ACTIVE")
    driver = gateway.request("gus", cp_id)
    st.wait_for("done", 60)
    result = driver.wait(30)
    assert result.exit_code == 4, result
    assert result.ticket["outcome"] == "aborted"
    gateway.check_conservation()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_reconnect_with_a_queued_stop(gateway: System, node: Path, protocol: str) -> None:
    st = station(gateway, node, f"R{short(protocol)}", protocol, "reconnect")
    cp_id = f"{st.station_id}-1"
    gateway.wait_cp(cp_id, 20, state="ACTIVE")
    driver = gateway.request("hal", cp_id)
    st.wait_for("done", 60)
    assert len(st.of("queued_sent")) == 2
    result = driver.wait(30)
    assert result.exit_code in (0, 4), result
    assert len(result.of("ticket")) == 1
    [session] = gateway.api.sessions(driver_id="hal")
    assert session["status"] == "ended"
    gateway.check_conservation()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bad_input_gets_ocpp_errors(gateway: System, node: Path, protocol: str) -> None:
    st = station(gateway, node, f"B{short(protocol)}", protocol, "bad")
    st.wait_for("done", 30)
    codes = {e["id"]: e["code"] for e in st.of("call_error")}
    assert codes["-1"] == ("FormationViolation" if protocol == "ocpp1.6" else "FormatViolation")
    assert codes["bad-1"] == "NotSupported"
    assert codes["bad-2"] in (
        "FormationViolation", "FormatViolation", "TypeConstraintViolation",
        "OccurrenceConstraintViolation", "OccurenceConstraintViolation",
    )  # fmt: skip
    assert st.of("still_serving")
    gateway.check_conservation()
