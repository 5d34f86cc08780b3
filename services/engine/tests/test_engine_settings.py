"""Settings (flags > EV_ variables > YAML file) and the control socket's requests."""

from __future__ import annotations

from pathlib import Path

import pytest
from evengine.control import ControlAnswer, ControlCommand, parse_request
from evengine.settings import ConsoleMode, EngineSettings
from evproto.config import build_parser, load_settings
from evproto.errors import ConfigError, EvError


def load(args: list[str], env: dict[str, str] | None = None) -> EngineSettings:
    parser = build_parser(EngineSettings, "evengine", "test")
    return load_settings(EngineSettings, parser.parse_args(args), env or {})


def test_defaults_are_the_documented_ones() -> None:
    s = load(["--cp-id", "CP-0"])
    assert (s.kafka, s.listen, s.location, s.price) == (
        "127.0.0.1:9092",
        "0.0.0.0:5500",
        "Unknown",
        "",
    )
    assert (s.power_kw, s.plug_delay, s.manual_timeout) == (22.0, 2.0, 180.0)
    assert (s.control_socket, s.console, s.metrics) == ("/tmp/evengine.sock", "auto", "")
    assert s.proposed_price is None and s.auto_plug_delay == 2.0
    assert s.console_mode is ConsoleMode.AUTO


def test_flags_win_over_variables_and_variables_over_the_file(tmp_path: Path) -> None:
    config = tmp_path / "engine.yaml"
    config.write_text("cp_id: CP-file\nlocation: From the file\npower_kw: 11\nprice: 0.25\n")
    env = {"EV_CONFIG": str(config), "EV_LOCATION": "From the env", "EV_PLUG_DELAY": "-1"}
    s = load(["--location", "From the flag"], env)
    assert (s.cp_id, s.location, s.power_kw) == ("CP-file", "From the flag", 11.0)
    assert s.proposed_price == 0.25 and s.auto_plug_delay is None


def test_kafka_security_settings_reach_the_kafka_client(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret\n")
    args = ["--cp-id", "CP-2", "--kafka-security-protocol", "SASL_SSL"]
    args += ["--kafka-username", "engine", "--kafka-password-file", str(secret)]
    s = load([*args, "--kafka-ca-file", "/etc/ca.pem"])
    kafka = s.kafka_settings()
    assert kafka.client_id == "evengine-CP-2"
    conf = kafka.common()
    assert conf["security.protocol"] == "SASL_SSL"
    assert (conf["sasl.username"], conf["sasl.password"]) == ("engine", "s3cret")
    assert conf["ssl.ca.location"] == "/etc/ca.pem"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ([], "--cp-id is required"),
        (["--cp-id", "CP 0"], "--cp-id"),
        (["--cp-id", "CP-0", "--price", "1e9"], "--price"),
        (["--cp-id", "CP-0", "--power-kw", "0"], "--power-kw"),
        (["--cp-id", "CP-0", "--plug-delay", "-2"], "--plug-delay"),
        (["--cp-id", "CP-0", "--manual-timeout", "0"], "--manual-timeout"),
        (["--cp-id", "CP-0", "--listen", "nowhere"], "--listen"),
        (["--cp-id", "CP-0", "--metrics", "localhost:99999"], "--metrics"),
        (["--cp-id", "CP-0", "--console", "sometimes"], "--console"),
        (["--cp-id", "CP-0", "--kafka-security-protocol", "TLS"], "--kafka-security-protocol"),
        (["--cp-id", "CP-0", "--log-level", "LOUD"], "--log-level"),
    ],
)
def test_bad_settings_are_refused_with_the_flag_named(args: list[str], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        load(args)


def test_control_requests_are_parsed_or_refused_clearly() -> None:
    assert parse_request(b'{"command": "ko"}\n') is ControlCommand.KO
    for bad, why in (
        (b"ko\n", "one JSON line"),
        (b'{"command": "explode"}\n', "unknown command 'explode'"),
        (b'{"command": ["ko"]}\n', "unknown command"),
        (b"[1, 2]\n", "unknown command"),
        (b"\xff\xfe\n", "one JSON line"),
    ):
        with pytest.raises(EvError, match=why):
            parse_request(bad)


def test_control_answers_round_trip_and_reject_garbage() -> None:
    answer = ControlAnswer(True, "health KO", {"state": "ACTIVE"})
    assert ControlAnswer.decode(answer.encode()) == answer
    with pytest.raises(EvError):
        ControlAnswer.decode(b'{"ok": "yes"}\n')
    with pytest.raises(EvError):
        ControlAnswer.decode(b"<html>\n")
