"""OCPP stations at the network (issue 17), driven by clients nobody here wrote.

The station side is the ``ocpp`` library's own ChargePoint classes, scripted
(e2e_ocpp); the gateway, the central and the drivers are the real processes.
Each scenario runs for OCPP 1.6J and 2.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_ocpp import Station16, Station201, card_holder, start_gateway, station
from e2e_system import System
from evstack.localstack import ManagedProcess
from evstack.waiting import wait_until
from ocpp.v16 import call as call16

pytestmark = pytest.mark.e2e

VERSIONS = ["1.6", "2.0.1"]
PRICE = 0.30


class OcppSystem:
    def __init__(self, system: System) -> None:
        self.system = system
        self.port = system.stack.ocpp_port
        self.gateway: ManagedProcess = start_gateway(system.stack)
        self.stations: list[Station16 | Station201] = []

    def station(self, version: str, station_id: str) -> Station16 | Station201:
        made = station(version, station_id, self.port)
        self.stations.append(made)
        return made

    def online(self, version: str, station_id: str) -> Station16 | Station201:
        """A station connected, booted (Accepted), Available, and its CP ACTIVE at the central."""
        st = self.station(version, station_id)
        wait_until(lambda: _try_connect(st), 20, f"{station_id} connects to the gateway")
        assert _status_of(st.boot()) == "Accepted"
        st.heartbeat()
        st.status("Available")
        self.system.wait_cp(f"{station_id}-1", 20, state="ACTIVE")
        return st

    def close(self) -> None:
        for st in self.stations:
            st.close()


def _try_connect(st: Station16 | Station201) -> bool:
    try:
        st.connect()
    except OSError:
        return False
    return True


def _status_of(result: object) -> str:
    return str(getattr(result, "status", ""))


@pytest.fixture
def ocpp(system: System) -> Iterator[OcppSystem]:
    system.start(cps=0)
    made = OcppSystem(system)
    yield made
    made.close()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_driver_charges_at_an_ocpp_station_started_remotely(
    ocpp: OcppSystem, version: str
) -> None:
    st = ocpp.online(version, f"ST{version.replace('.', '')}")
    cp_id = f"{st.station_id}-1"
    driver = ocpp.system.request("alice", cp_id, max_kwh=0.05)
    result = driver.wait(60)
    assert result.exit_code == 0, result
    ticket = result.ticket
    assert ticket["cp_id"] == cp_id and ticket["outcome"] == "completed"
    assert ticket["kwh"] >= 0.05 and ticket["eur"] == pytest.approx(ticket["kwh"] * PRICE)
    assert "limit reached" in ticket["reason"]
    assert result.of("progress"), "no live progress from the station's meter values"
    assert st.remote_starts and st.tx_id is None  # started remotely, stopped remotely
    ocpp.system.wait_cp(cp_id, 10, state="ACTIVE")
    ocpp.system.check_conservation()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_driver_starts_at_the_station_with_an_id_token(ocpp: OcppSystem, version: str) -> None:
    api = ocpp.system.api
    card_holder(ocpp.system, "bob", "04A2B3C4")
    st = ocpp.online(version, f"TK{version.replace('.', '')}")
    cp_id = f"{st.station_id}-1"
    assert st.authorize("DEADBEEF") == "Invalid"  # a card nobody attached
    assert st.start_local("04A2B3C4") == "Accepted"
    ocpp.system.wait_supplying(cp_id, "bob", 20)
    st.stop("EVDisconnected")

    def ended() -> dict[str, object] | None:
        sessions = api.sessions(driver_id="bob")
        return sessions[0] if sessions and sessions[0]["status"] == "ended" else None

    session = wait_until(ended, 20, "bob's session ends with the station's ticket")
    assert session["cp_id"] == cp_id and session["outcome"] == "completed"
    assert float(session["kwh"]) > 0
    ocpp.system.check_conservation()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_fault_mid_supply_aborts_it_and_the_cp_is_broken(ocpp: OcppSystem, version: str) -> None:
    st = ocpp.online(version, f"FT{version.replace('.', '')}")
    cp_id = f"{st.station_id}-1"
    driver = ocpp.system.request("carol", cp_id)
    ocpp.system.wait_supplying(cp_id, "carol", 20)
    if isinstance(st, Station16):
        st.status("Faulted", "GroundFailure")
    else:
        st.status("Faulted")
    ocpp.system.wait_cp(cp_id, 10, state="BROKEN_DOWN")
    st.stop("EmergencyStop")
    result = driver.wait(30)
    assert result.exit_code == 4, result  # aborted, with the partial ticket
    assert result.ticket["outcome"] == "aborted"
    ocpp.system.check_conservation()


@pytest.mark.parametrize("version", VERSIONS)
def test_a_stop_queued_offline_is_billed_once_after_the_reconnect(
    ocpp: OcppSystem, version: str
) -> None:
    st = ocpp.online(version, f"RC{version.replace('.', '')}")
    cp_id = f"{st.station_id}-1"
    driver = ocpp.system.request("dave", cp_id)
    ocpp.system.wait_supplying(cp_id, "dave", 20)
    st.disconnect()
    st.stop_offline()
    ocpp.system.wait_cp(cp_id, 10, state="DISCONNECTED")
    st.connect()
    assert _status_of(st.boot()) == "Accepted"
    st.send_queued()
    st.send_queued()  # the station was not sure it arrived: sent twice, billed once
    result = driver.wait(30)
    assert result.exit_code in (0, 4), result
    assert len(result.of("ticket")) == 1
    [session] = ocpp.system.api.sessions(driver_id="dave")
    assert session["status"] == "ended"
    ocpp.system.check_conservation()


@pytest.mark.parametrize("version", VERSIONS)
def test_the_operator_stops_and_resumes_an_ocpp_cp(ocpp: OcppSystem, version: str) -> None:
    st = ocpp.online(version, f"OP{version.replace('.', '')}")
    cp_id = f"{st.station_id}-1"
    assert ocpp.system.api.stop(cp_id).status == 202
    # ChangeAvailability(Inoperative): the station says Unavailable, the CP is out of order
    ocpp.system.wait_cp(cp_id, 15, state="STOPPED")
    reported = f"status cp={cp_id} status=unavailable"
    wait_until(lambda: reported in ocpp.gateway.log_text(), 15, "the station says Unavailable")
    ocpp.system.wait_cp(cp_id, 5, state="STOPPED")  # orange, not red: no fault
    assert ocpp.system.api.resume(cp_id).status == 202
    ocpp.system.wait_cp(cp_id, 15, state="ACTIVE")
    ocpp.system.check_conservation()


def test_a_start_transaction_sent_again_is_the_same_transaction(ocpp: OcppSystem) -> None:
    """A 1.6 station whose StartTransaction answer was lost sends it again: one session."""
    api = ocpp.system.api
    card_holder(ocpp.system, "ivy", "0A0B0C0D")
    st = ocpp.online("1.6", "TWICE")
    start = call16.StartTransaction(
        connector_id=1, id_tag="0A0B0C0D", meter_start=5000, timestamp="2026-12-01T10:00:00Z"
    )
    first, again = st.run(st.cp.call(start)), st.run(st.cp.call(start))
    assert first.id_tag_info["status"] == again.id_tag_info["status"] == "Accepted"
    assert first.transaction_id == again.transaction_id
    st.tx_id, st.energy_wh = str(first.transaction_id), 5000
    st.charge()  # meter values as it charges, until the driver leaves
    ocpp.system.wait_supplying(st.station_id + "-1", "ivy", 20)
    st.stop("Local")
    wait_until(
        lambda: [s for s in api.sessions(driver_id="ivy") if s["status"] == "ended"],
        20,
        "ivy's session ends",
    )
    assert len(api.sessions(driver_id="ivy")) == 1
    ocpp.system.check_conservation()


def test_an_operator_reset_re_keys_an_ocpp_cp_through_the_gateway(ocpp: OcppSystem) -> None:
    """evctl reset on a station's CP: the gateway's link is dropped, it registers the
    connector again with the token and keeps the new secret in gateway.db."""
    st = ocpp.online("2.0.1", "RESET")
    cp_id = f"{st.station_id}-1"
    assert ocpp.system.api.request("POST", f"/api/cps/{cp_id}/reset").status == 202
    registered = f"cp registered cp={cp_id}"
    wait_until(
        lambda: ocpp.gateway.log_text().count(registered) == 2, 20, "the gateway re-registers"
    )
    ocpp.system.wait_cp(cp_id, 20, state="ACTIVE", connected=True)
    assert ocpp.system.request("jo", cp_id, max_kwh=0.01).wait(60).exit_code == 0
    ocpp.system.check_conservation()
