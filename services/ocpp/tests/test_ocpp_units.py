"""Pure parts of the gateway: meter values, the store, the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from evocpp.meter import read_meter_values
from evocpp.settings import Enrollment, OcppSettings
from evocpp.store import StationStatus, Store, TransactionRecord, hash_password
from evproto.errors import ConfigError


def test_the_energy_register_is_read_in_wh_from_both_versions() -> None:
    v16 = [{"sampled_value": [
        {"value": "1234.5", "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
        {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
        {"value": "400", "measurand": "Energy.Active.Import.Register", "phase": "L1"},
    ]}]  # fmt: skip
    reading = read_meter_values(v16)
    assert reading.energy_wh == 1234.5 and reading.power_w == 7200.0
    v201 = [{"sampled_value": [{"value": 1.5, "unit_of_measure": {"unit": "kWh"}}]}]
    assert read_meter_values(v201).energy_wh == 1500.0  # the default measurand
    scaled = [
        {"sampled_value": [{"value": 12, "unit_of_measure": {"unit": "Wh", "multiplier": 3}}]}
    ]
    assert read_meter_values(scaled).energy_wh == 12000.0


@pytest.mark.parametrize(
    "sample", [{"value": "nan"}, {"value": "x"}, {"value": "1", "unit": "V"}, {"value": None}]
)
def test_unreadable_samples_are_skipped(sample: dict[str, object]) -> None:
    assert read_meter_values([{"sampled_value": [sample]}]).energy_wh is None
    assert read_meter_values(None).energy_wh is None


def test_a_transaction_ends_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "state" / "gateway.db")
    assert (tmp_path / "state" / "gateway.db").stat().st_mode & 0o777 == 0o600
    tx = TransactionRecord("7", "ST", "ST-1", "s1", "alice", 0.3, 1.0, 1000.0, 0, 0.0, None, False)
    store.open_transaction(tx)
    store.record_telemetry("7", 1, 0.5)
    assert store.transaction("7") == TransactionRecord(
        "7", "ST", "ST-1", "s1", "alice", 0.3, 1.0, 1000.0, 1, 0.5, None, False
    )
    assert store.end_transaction("7") is True
    assert store.end_transaction("7") is False  # a StopTransaction sent twice
    assert [store.next_transaction_number() for _ in range(3)] == [1, 2, 3]


def test_station_passwords_are_stored_hashed(tmp_path: Path) -> None:
    store = Store(tmp_path / "gateway.db")
    record = store.enroll("ST", StationStatus.PENDING, "s3cret", 0.0)
    assert "s3cret" not in record.password_hash and record.password_ok("s3cret")
    assert not record.password_ok("wrong") and not record.password_ok(None)
    accepted = store.enroll("ST", StationStatus.ACCEPTED, None, 1.0)  # keeps the password
    assert accepted.status is StationStatus.ACCEPTED and accepted.password_ok("s3cret")
    assert hash_password("a") != hash_password("a")  # salted


def test_settings_refuse_what_cannot_work() -> None:
    assert OcppSettings().enrollment_mode is Enrollment.CLOSED
    with pytest.raises(ConfigError, match="--enrollment"):
        _ = OcppSettings(enrollment="open-sesame").enrollment_mode
    with pytest.raises(ConfigError, match="go together"):
        OcppSettings(tls_cert="cert.pem")
    assert OcppSettings(tls_cert="c", tls_key="k").scheme == "wss"
