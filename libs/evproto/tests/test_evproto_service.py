"""The service kit: settings errors, --version, exit codes, log lines and metrics."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
from evproto.config import ServiceSettings, setting
from evproto.errors import AuthError, ConfigError
from evproto.logs import kv
from evproto.metrics import ServiceMetrics
from evproto.schema import SCHEMA_VERSION
from evproto.service import ExitCode, Service, main, until_stopped
from evproto.vocabulary import AbortCause, LinkErrorKind
from prometheus_client import generate_latest


@dataclass(frozen=True, slots=True)
class DemoSettings(ServiceSettings):
    interval: float = setting(1.0, help="seconds between rounds", above=0, maximum=3600)
    count: int = setting(3, help="rounds", minimum=1, maximum=10)
    name: str = setting("CP-1", help="an id", pattern=r"[A-Z]+-\d+", pattern_help="like CP-1")


def _done(settings: DemoSettings, args: argparse.Namespace) -> int:
    logging.getLogger("demo").info("ran %s", kv(cp=settings.name, rounds=settings.count))
    return ExitCode.STOPPED


DEMO = Service("evproto", DemoSettings, "A demo service.", _done)


@pytest.fixture(autouse=True)
def _root_logger_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """main() sets up logging: the test's changes to the root logger are undone."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", root.level)


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["--metrics", "nonsense"], "--metrics"),
        (["--interval", "-1"], "--interval"),
        (["--interval", "0"], "--interval"),
        (["--count", "11"], "--count"),
        (["--count", "many"], "--count"),
        (["--name", "cp 1"], "--name"),
        (["--log-level", "LOUD"], "--log-level"),
        (["--log-format", "xml"], "--log-format"),
        (["--config", "/nonexistent/evproto.yaml"], "config"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line_naming_it(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(DEMO, argv) == ExitCode.CONFIG
    line = _one_error_line(capsys)
    assert line.startswith("evproto: error: ") and named in line


def test_a_huge_yaml_number_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(f"interval: {'9' * 400}\ncount: {'9' * 400}\n")
    assert main(DEMO, ["--config", str(config)]) == ExitCode.CONFIG
    line = _one_error_line(capsys)
    assert "interval" in line or "count" in line
    assert len(line) < 200


def test_bad_yaml_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("interval: [1,\n  2\ncount: {\n")
    assert main(DEMO, ["--config", str(config)]) == ExitCode.CONFIG
    assert "not valid YAML" in _one_error_line(capsys)


def test_an_unknown_flag_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(DEMO, ["--no-such-flag"])
    assert exited.value.code == ExitCode.CONFIG
    assert "--no-such-flag" in _one_error_line(capsys)


def test_version_prints_the_package_and_schema_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(DEMO, ["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out.startswith("evproto 0.") and out.endswith(f"(protocol schema {SCHEMA_VERSION})")


def test_help_shows_each_settings_bounds(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(DEMO, ["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(> 0 and <= 3600)" in text and "(1-10)" in text and "(like CP-1)" in text
    assert "one of text, json" in text and "--metrics HOST:PORT" in text
    assert "3 credentials refused" in text


def test_json_log_lines_carry_the_ids_as_fields(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(DEMO, ["--log-format", "json"]) == ExitCode.STOPPED
    (line,) = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["level"] == "INFO" and event["component"] == "evproto"
    assert event["message"] == "ran" and event["ts"].endswith("Z")
    assert (event["cp"], event["rounds"]) == ("CP-1", 3)


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("the engine is another CP"), ExitCode.CONFIG),
        (AuthError("bad proof"), ExitCode.CREDENTIALS),
        (RuntimeError("bug"), ExitCode.FAILED),
    ],
)
def test_a_runtime_error_maps_to_its_exit_code(
    error: Exception, code: ExitCode, capsys: pytest.CaptureFixture[str]
) -> None:
    async def serve(settings: DemoSettings, stop: asyncio.Event) -> None:
        raise error

    service = Service("evproto", DemoSettings, "A demo service.", until_stopped(serve))
    assert main(service, []) == code
    (line,) = capsys.readouterr().err.splitlines()
    assert "exiting" in line


def test_metrics_are_prefixed_and_every_error_kind_starts_at_zero() -> None:
    metrics = ServiceMetrics("demo", count_frames=True)
    metrics.counter("rounds_total", "rounds run").inc()
    observer = metrics.link_counter()
    observer.frame_in()
    observer.protocol_error(LinkErrorKind.STRAY_BYTES)
    text = generate_latest(metrics.registry).decode()
    for kind in LinkErrorKind:
        count = 1.0 if kind is LinkErrorKind.STRAY_BYTES else 0.0
        assert f'evcharging_demo_protocol_errors_total{{kind="{kind}"}} {count}' in text
    assert "evcharging_demo_rounds_total 1.0" in text
    assert "evcharging_demo_frames_received_total 1.0" in text
    assert "process_cpu_seconds_total" in text and "python_info" in text
    own = [
        line.split("{")[0].split(" ")[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    ]
    assert all(n.startswith(("evcharging_demo_", "process_", "python_")) for n in own)


def test_an_unknown_error_code_counts_as_a_bad_message() -> None:
    assert LinkErrorKind.of("bad_lrc") is LinkErrorKind.BAD_LRC
    assert LinkErrorKind.of("something_new") is LinkErrorKind.BAD_MESSAGE


def test_the_interface_contract_lists_every_word_of_the_vocabulary() -> None:
    contract = (Path(__file__).resolve().parents[3] / "docs" / "interfaces.md").read_text()
    for word in (*LinkErrorKind, *AbortCause):
        assert f"`{word}`" in contract, word
