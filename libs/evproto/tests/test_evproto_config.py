"""Settings: flags > EV_ variables > YAML file > defaults, and clear errors naming the source."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from evproto.config import build_parser, load_settings, parse_hostport, setting
from evproto.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Demo:
    port: int = setting(3440, help="TCP port")
    host: str = setting("0.0.0.0", help="address")
    interval: float = setting(1.0, help="seconds")
    tls: bool = setting(False, help="use TLS")
    token: str = setting("", help="a secret", secret=True)
    price: float | None = setting(None, help="€/kWh")


def load(
    argv: Sequence[str] = (), env: Mapping[str, str] | None = None, yaml: str | None = None,
    tmp: Path | None = None,
) -> Demo:  # fmt: skip
    args = list(argv)
    if yaml is not None:
        assert tmp is not None
        path = tmp / "settings.yaml"
        path.write_text(yaml)
        args += ["--config", str(path)]
    parsed = build_parser(Demo, "demo", "a demo").parse_args(args)
    return load_settings(Demo, parsed, env or {})


def test_defaults_apply_when_nothing_is_set() -> None:
    assert load() == Demo()


def test_precedence_is_flag_then_env_then_yaml_then_default(tmp_path: Path) -> None:
    yaml = "port: 1\nhost: from-yaml\ninterval: 3\n"
    env = {"EV_PORT": "2", "EV_HOST": "from-env"}

    got = load(["--port", "3"], env, yaml, tmp_path)

    assert (got.port, got.host, got.interval, got.tls) == (3, "from-env", 3.0, False)


def test_the_config_file_can_come_from_ev_config(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("port: 7\n")
    assert load(env={"EV_CONFIG": str(path)}).port == 7


def test_yaml_keys_may_use_dashes(tmp_path: Path) -> None:
    assert load(yaml="interval: 0.5\n", tmp=tmp_path).interval == 0.5


def test_secrets_are_read_from_a_file_by_flag_or_env(tmp_path: Path) -> None:
    flag_file, env_file = tmp_path / "a", tmp_path / "b"
    flag_file.write_text("from-flag-file\n")
    env_file.write_text("from-env-file\n")

    assert load(["--token-file", str(flag_file)], {"EV_TOKEN_FILE": str(env_file)}).token == (
        "from-flag-file"
    )
    assert load(env={"EV_TOKEN_FILE": str(env_file), "EV_TOKEN": "plain"}).token == (
        "from-env-file"
    )
    assert load(["--token", "direct"], {"EV_TOKEN_FILE": str(env_file)}).token == "direct"


def test_a_missing_secret_file_names_the_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="EV_TOKEN_FILE: cannot read"):
        load(env={"EV_TOKEN_FILE": str(tmp_path / "missing")})


@pytest.mark.parametrize(
    ("argv", "env", "yaml", "says"),
    [
        pytest.param(
            [], {"EV_PORT": "abc"}, None, "EV_PORT: invalid value 'abc' for port", id="env"
        ),
        pytest.param(["--port", "x"], {}, None, "--port: invalid value 'x'", id="flag"),
        pytest.param([], {}, "port: x\n", "config file key 'port': invalid value", id="yaml"),
        pytest.param([], {}, "port: 2.5\n", "expected a whole number", id="yaml-float-int"),
        pytest.param([], {"EV_PORT": "true"}, None, "EV_PORT: invalid value", id="env-bool-int"),
        pytest.param([], {}, "port: true\n", "expected a whole number", id="yaml-bool-int"),
        pytest.param([], {"EV_INTERVAL": "nan"}, None, "finite", id="nan"),
        pytest.param([], {}, "interval: .inf\n", "finite", id="inf"),
        pytest.param([], {"EV_TLS": "maybe"}, None, "EV_TLS: invalid value", id="bool"),
        pytest.param([], {}, "host: [a, b]\n", "expected a single value", id="list-for-str"),
    ],
)
def test_bad_values_name_their_source(
    argv: list[str], env: dict[str, str], yaml: str | None, says: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(argv, env, yaml, tmp_path)
    assert says in caught.value.message


def test_a_whole_float_in_yaml_is_accepted_for_an_int(tmp_path: Path) -> None:
    assert load(yaml="port: 3.0\n", tmp=tmp_path).port == 3


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("true", True), ("Yes", True), ("on", True), ("0", False), ("false", False),
     ("no", False), ("OFF", False)],
)  # fmt: skip
def test_bool_parsing(text: str, value: bool) -> None:
    assert load(env={"EV_TLS": text}).tls is value


def test_bool_flags_and_yaml_bools(tmp_path: Path) -> None:
    assert load(["--tls"]).tls is True
    assert load(["--no-tls"], {"EV_TLS": "1"}).tls is False
    assert load(yaml="tls: yes\n", tmp=tmp_path).tls is True


def test_an_unknown_yaml_key_is_rejected_and_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown setting\\(s\\) prot"):
        load(yaml="prot: 1\n", tmp=tmp_path)


@pytest.mark.parametrize("yaml", ["- port\n", "[]\n", "42\n", "just text\n"])
def test_a_yaml_file_that_is_not_a_mapping_is_rejected(yaml: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load(yaml=yaml, tmp=tmp_path)


def test_an_empty_yaml_file_means_defaults(tmp_path: Path) -> None:
    assert load(yaml="", tmp=tmp_path) == Demo()


def test_invalid_yaml_and_missing_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(yaml="port: [1\n", tmp=tmp_path)
    with pytest.raises(ConfigError, match="cannot read config file"):
        load(env={"EV_CONFIG": str(tmp_path / "nope.yaml")})


def test_help_documents_every_flag_with_its_variable() -> None:
    text = build_parser(Demo, "demo", "a demo").format_help()
    for needle in ("--port", "EV_PORT", "--token-file", "EV_TOKEN_FILE", "--no-tls", "--config"):
        assert needle in text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:9092", ("127.0.0.1", 9092)),
        ("kafka.svc:9092", ("kafka.svc", 9092)),
        (":8080", ("0.0.0.0", 8080)),
        ("[::1]:3440", ("::1", 3440)),
        ("host:0", ("host", 0)),
    ],
)
def test_parse_hostport_accepts_host_port(value: str, expected: tuple[str, int]) -> None:
    assert parse_hostport(value, what="--kafka") == expected


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("localhost", "is not HOST:PORT"),
        ("host:", "is not a number"),
        ("host:http", "is not a number"),
        ("host:+80", "is not a number"),
        ("host:8_0", "is not a number"),
        ("host:70000", "out of range"),
    ],
)
def test_parse_hostport_rejects_bad_values_naming_the_setting(value: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_hostport(value, what="--kafka")
    assert caught.value.message.startswith("--kafka: ")
    assert says in caught.value.message
