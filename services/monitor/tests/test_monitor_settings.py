"""Settings: the flags of docs/interfaces.md, their defaults, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from evmonitor import MonitorSettings
from evproto.config import build_parser, load_settings
from evproto.errors import ConfigError

INTERFACES = Path(__file__).resolve().parents[3] / "docs" / "interfaces.md"


def parse(*argv: str, environ: dict[str, str] | None = None) -> MonitorSettings:
    parser = build_parser(MonitorSettings, "evmonitor", "test")
    return load_settings(MonitorSettings, parser.parse_args(argv), environ or {})


# Common to every service (docs/interfaces.md, "Every command"), not listed per service.
COMMON_FLAGS = {"--log-level", "--log-format", "--metrics", "--version"}


def contract_flags() -> set[str]:
    section = INTERFACES.read_text().split("## evmonitor", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"`(--[a-z-]+)`", section))


def test_the_flags_are_exactly_those_of_the_contract():
    parser = build_parser(MonitorSettings, "evmonitor", "test")
    ours = {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option not in {"--help", "--config"}
    }
    ours -= {"--no-central-tls", "--registration-token-file"}  # generated companions
    assert ours - COMMON_FLAGS == contract_flags() - COMMON_FLAGS


def test_defaults_follow_the_contract():
    settings = parse("--cp-id", "CP-0")
    assert settings.engine_address == ("127.0.0.1", 5500)
    assert settings.central_address == ("127.0.0.1", 3440)
    assert settings.secret_path == Path(".evmonitor/CP-0.secret")
    assert settings.registration_token == ""
    assert (settings.health_interval, settings.health_timeout) == (1.0, 1.0)
    assert (settings.central_tls, settings.central_ca_file) == (False, "")
    assert settings.retry_cap == 10.0
    assert settings.metrics == ""
    assert settings.central_ssl_context() is None


def test_environment_variables_and_the_token_file(tmp_path):
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    settings = parse(
        environ={
            "EV_CP_ID": "CP-7",
            "EV_ENGINE": "engine.local:5501",
            "EV_HEALTH_INTERVAL": "0.5",
            "EV_CENTRAL_TLS": "true",
            "EV_REGISTRATION_TOKEN_FILE": str(token),
        }
    )
    assert settings.cp_id == "CP-7"
    assert settings.engine_address == ("engine.local", 5501)
    assert settings.health_interval == 0.5
    assert settings.central_tls is True
    assert settings.registration_token == "s3cret"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "--cp-id is required"),
        (("--cp-id", "CP/0"), "--cp-id: 'CP/0' is not a valid id"),
        (("--cp-id", "CP-0", "--health-timeout", "-1"), "-1.0 must be more than 0"),
        (("--cp-id", "CP-0", "--retry-cap", "0"), "--retry-cap: 0.0 must be more than 0"),
        (("--cp-id", "CP-0", "--central", "central:http"), "--central: port 'http'"),
        (("--cp-id", "CP-0", "--metrics", "9101"), "--metrics: '9101' is not HOST:PORT"),
        (("--cp-id", "CP-0", "--central-ca-file", "ca.pem"), "--central-tls is off"),
        (("--cp-id", "CP-0", "--health-interval", "soon"), "invalid value 'soon'"),
    ],
)
def test_bad_settings_name_the_culprit(argv, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse(*argv)


def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path):
    settings = parse(
        "--cp-id", "CP-0", "--central-tls", "--central-ca-file", str(tmp_path / "missing.pem")
    )
    with pytest.raises(ConfigError, match="cannot load CA certificates"):
        settings.central_ssl_context()


def test_tls_checks_the_host_name():
    context = parse("--cp-id", "CP-0", "--central-tls").central_ssl_context()
    assert context is not None
    assert context.check_hostname
