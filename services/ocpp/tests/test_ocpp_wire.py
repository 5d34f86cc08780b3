"""OCPP-J on the wire: admission, boot, heartbeat, status and every kind of bad input.

Exact frames are asserted, as a station would see them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from evocpp.gateway import Gateway
from evocpp.store import StationStatus

sys.path.insert(0, str(Path(__file__).parent))
from conftest import handshake_status, raw_station

BOOT_16 = {"chargePointVendor": "Acme", "chargePointModel": "Wallbox 16"}
BOOT_201 = {"chargingStation": {"vendorName": "Acme", "model": "Wallbox 201"}, "reason": "PowerUp"}


def errors(gateway: Gateway, kind: str) -> float:
    return gateway.metrics.errors.labels(kind=kind)._value.get()


def messages(gateway: Gateway, action: str, result: str) -> float:
    return gateway.metrics.messages.labels(action=action, result=result)._value.get()


async def test_a_16_station_boots_heartbeats_and_reports_status(gateway: Gateway) -> None:
    async with raw_station(gateway, "ST-16") as station:
        boot = await station.call("BootNotification", BOOT_16)
        assert boot[0] == 3 and boot[2]["status"] == "Accepted" and boot[2]["interval"] == 10
        heartbeat = await station.call("Heartbeat", {})
        assert heartbeat[0] == 3 and heartbeat[2]["currentTime"].endswith("Z")
        status = await station.call(
            "StatusNotification", {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
        )
        assert status == [3, status[1], {}]
        assert gateway.metrics.stations_connected.labels(version="ocpp1.6")._value.get() == 1
    assert messages(gateway, "Heartbeat", "ok") == 1


async def test_a_201_station_boots_and_reports_status(gateway: Gateway) -> None:
    async with raw_station(gateway, "ST-201", "ocpp2.0.1") as station:
        boot = await station.call("BootNotification", BOOT_201)
        assert boot[2]["status"] == "Accepted"
        status = await station.call(
            "StatusNotification",
            {"timestamp": "2026-12-01T10:00:00Z", "connectorStatus": "Available",
             "evseId": 1, "connectorId": 1},
        )  # fmt: skip
        assert status[0] == 3


async def test_bad_input_gets_ocpp_errors_and_the_link_keeps_serving(gateway: Gateway) -> None:
    async with raw_station(gateway, "ST-BAD") as station:
        await station.send_text("this is not json")
        assert (await station.read())[:3] == [4, "-1", "FormationViolation"]
        await station.send_text(json.dumps({"not": "a list"}))
        assert (await station.read())[:3] == [4, "-1", "ProtocolError"]
        before_boot = await station.call("Heartbeat", {})
        assert before_boot[2] == "SecurityError"
        await station.call("BootNotification", BOOT_16)
        unknown = await station.call("MakeCoffee", {})
        assert unknown[2] == "NotSupported"
        not_handled = await station.call("ReserveNow", {})
        assert not_handled[2] == "NotImplemented"
        schema = await station.call("StatusNotification", {"connectorId": "one"})
        assert schema[0] == 4 and schema[2] in ("FormationViolation", "TypeConstraintViolation",
                                                  "OccurenceConstraintViolation")  # fmt: skip
        await station.send_text(json.dumps([3, "nobody-asked", {}]))
        assert (await station.call("Heartbeat", {}))[0] == 3  # still serving
    assert errors(gateway, "formation_violation") == 1
    assert errors(gateway, "protocol_error") == 1
    assert errors(gateway, "not_accepted") == 1
    assert errors(gateway, "not_supported") == 1
    assert errors(gateway, "not_implemented") == 1
    assert errors(gateway, "schema_violation") == 1
    assert errors(gateway, "unexpected_result") == 1
    assert messages(gateway, "unknown", "error") == 1


async def test_201_spells_its_error_codes_its_own_way(gateway: Gateway) -> None:
    async with raw_station(gateway, "ST-BAD2", "ocpp2.0.1") as station:
        await station.send_text("{")
        assert (await station.read())[:3] == [4, "-1", "FormatViolation"]


async def test_a_client_without_an_ocpp_subprotocol_is_refused(gateway: Gateway) -> None:
    assert await handshake_status(gateway, "ST-X", "chat") == 400
    assert errors(gateway, "bad_subprotocol") == 1


@pytest.mark.parametrize("gateway", [{"enrollment": "closed"}], indirect=True)
async def test_closed_enrollment_refuses_unknown_stations(gateway: Gateway) -> None:
    assert await handshake_status(gateway, "ST-NEW", "ocpp1.6") == 401
    assert gateway.store.station("ST-NEW") is None
    assert errors(gateway, "unknown_station") == 1


@pytest.mark.parametrize("gateway", [{"enrollment": "pending"}], indirect=True)
async def test_a_pending_station_is_accepted_once_the_operator_says_so(gateway: Gateway) -> None:
    async with raw_station(gateway, "ST-P", password="s3cret-pass") as station:
        first = await station.call("BootNotification", BOOT_16)
        assert first[2]["status"] == "Pending"
        record = gateway.store.station("ST-P")
        assert record is not None and record.status is StationStatus.PENDING
        assert "s3cret" not in record.password_hash  # stored hashed
        gateway.store.enroll("ST-P", StationStatus.ACCEPTED, None, 0.0)  # evocpp stations accept
        second = await station.call("BootNotification", BOOT_16)
        assert second[2]["status"] == "Accepted"
    # from now on the station's password is required
    assert await handshake_status(gateway, "ST-P", "ocpp1.6") == 401
    async with raw_station(gateway, "ST-P", password="s3cret-pass") as station:
        assert (await station.call("BootNotification", BOOT_16))[2]["status"] == "Accepted"
    assert errors(gateway, "auth_failed") == 1
