"""Logs: one line per event, ids as key=value."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from evproto.logs import kv, setup_logging


def test_kv_formats_key_value_pairs_and_skips_none() -> None:
    assert kv(cp="CP-1", driver=None, session="s1", kwh=1.5) == "cp=CP-1 session=s1 kwh=1.5"


def test_kv_quotes_values_with_spaces_or_empty() -> None:
    assert kv(reason="charging point fault", location="") == (
        "reason='charging point fault' location=''"
    )


def test_kv_keeps_hostile_values_on_one_line() -> None:
    line = kv(driver="D1\nFAKE level=ERROR", note="a\rb")
    assert "\n" not in line and "\r" not in line
    assert line == "driver='D1\\\\nFAKE level=ERROR' note=a\\rb"


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_root_logger")
def test_setup_logging_writes_one_utc_line_per_event(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("central", "debug")

    logging.getLogger("evcentral.test").info("supply authorized %s", kv(cp="CP-1", driver="D1"))

    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    stamp, level, component, *rest = lines[0].split(" ")
    assert stamp.endswith("Z") and "T" in stamp
    assert (level, component) == ("INFO", "central")
    assert " ".join(rest) == "supply authorized cp=CP-1 driver=D1"
    assert logging.getLogger().level == logging.DEBUG


@pytest.mark.usefixtures("restore_root_logger")
def test_json_fields_keep_hostile_values_inside_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    setup_logging("demo", "INFO", "json")
    log = logging.getLogger("demo")
    log.warning("refused %s input", kv(driver="D1\nFAKE", session="S\u2028x", level="x"))
    (line,) = capsys.readouterr().err.splitlines()
    event = json.loads(line)
    assert event["message"] == "refused input"
    assert event["driver"] == "D1\nFAKE" and event["session"] == "S\u2028x"
    assert event["field_level"] == "x"


@pytest.mark.usefixtures("restore_root_logger")
def test_text_log_lines_escape_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("demo", "INFO")
    log = logging.getLogger("demo")
    log.warning("bad %s from %s", "a\nb\x1b[31m", kv(cp="CP-1"))
    try:
        raise ValueError("two\nlines")
    except ValueError:
        log.exception("failed %s", kv(cp="CP-1"))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("bad a\\nb\\x1b[31m from cp=CP-1")
    assert "failed cp=CP-1 error=Traceback" in lines[1] and "two\\nlines" in lines[1]
