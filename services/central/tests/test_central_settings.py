"""Settings from flags, EV_ variables, a YAML file and secret files; bad values fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from evcentral.__main__ import main
from evcentral.settings import CentralSettings
from evproto.config import build_parser, load_settings
from evproto.errors import ConfigError


def load(argv: list[str], env: dict[str, str] | None = None) -> CentralSettings:
    parser = build_parser(CentralSettings, "evcentral", "test")
    return load_settings(CentralSettings, parser.parse_args(argv), env or {})


def test_defaults_follow_the_interface_contract() -> None:
    s = load([])
    assert (s.kafka, s.db, s.listen, s.http) == (
        "127.0.0.1:9092",
        "evcentral.db",
        "0.0.0.0:3440",
        "0.0.0.0:8080",
    )
    assert (s.default_price, s.heartbeat_interval, s.missed_heartbeats, s.start_timeout) == (
        0.30,
        1.0,
        3,
        60.0,
    )
    assert s.create_topics and s.operator_token == "" and s.registration_token == ""
    assert s.idle_timeout == 3.0
    assert s.kafka_settings().security_protocol == "PLAINTEXT"


def test_flags_win_over_variables_and_variables_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "central.yaml"
    config.write_text("default-price: 0.4\nstart_timeout: 30\nlisten: 127.0.0.1:4000\n")
    s = load(
        ["--config", str(config), "--listen", "127.0.0.1:5000", "--no-create-topics"],
        {"EV_START_TIMEOUT": "45"},
    )
    assert (s.default_price, s.start_timeout, s.listen, s.create_topics) == (
        0.4,
        45.0,
        "127.0.0.1:5000",
        False,
    )


def test_secrets_come_from_files(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    s = load(["--operator-token-file", str(token)], {"EV_KAFKA_PASSWORD_FILE": str(token)})
    assert s.operator_token == "s3cret" and s.kafka_password == "s3cret"
    kafka = load(
        ["--kafka-security-protocol", "SASL_SSL", "--kafka-username", "central"],
        {"EV_KAFKA_PASSWORD": "pw", "EV_KAFKA_CA_FILE": "/ca.pem"},
    ).kafka_settings()
    assert (kafka.security_protocol, kafka.sasl_username, kafka.sasl_password) == (
        "SASL_SSL",
        "central",
        "pw",
    )
    assert kafka.common()["ssl.ca.location"] == "/ca.pem"


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--listen", "nowhere"], "--listen"),
        (["--missed-heartbeats", "0"], "--missed-heartbeats"),
        (["--heartbeat-interval", "-1"], "--heartbeat-interval"),
        (["--default-price", "500"], "--default-price"),
        (["--tls-cert", "c.pem"], "--tls-key"),
        (["--kafka-security-protocol", "TLS"], "--kafka-security-protocol"),
        (["--start-timeout", "soon"], "start_timeout"),
        (["--log-level", "LOUD"], "--log-level"),
    ],
)
def test_bad_values_are_refused_clearly(argv: list[str], problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(argv)
    assert problem in err.value.message


def test_main_exits_2_on_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--missed-heartbeats", "0"]) == 2
    assert "--missed-heartbeats" in capsys.readouterr().err


def test_help_documents_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--kafka", "--db", "--listen", "--http", "--operator-token", "--operator-token-file",
        "--registration-token", "--default-price", "--heartbeat-interval", "--missed-heartbeats",
        "--start-timeout", "--create-topics", "--no-create-topics", "--tls-cert", "--tls-key",
        "--kafka-security-protocol", "--kafka-sasl-mechanism", "--kafka-username",
        "--kafka-password", "--kafka-ca-file", "--log-level", "EV_REGISTRATION_TOKEN",
    ):  # fmt: skip
        assert flag in text, flag
