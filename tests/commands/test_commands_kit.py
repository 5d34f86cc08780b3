"""The five commands share one kit: --version, JSON log lines, one-line setting errors.

Run as a user would: the installed console scripts, as processes, with nothing
else running (Kafka and the peers are unreachable on purpose).
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
COMMANDS = ("evcentral", "evengine", "evmonitor", "evdriver", "evocpp")


def closed_port() -> int:
    """A port nobody listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def json_lines(text: str) -> list[dict[str, object]]:
    lines = text.splitlines()
    assert lines, "no log lines"
    return [json.loads(line) for line in lines]


def serve_until(argv: list[str], marker: str, deadline: float = 30) -> tuple[int, str]:
    """Start a long-running command, wait for ``marker`` on stderr, SIGTERM it."""
    proc = subprocess.Popen(
        [str(BIN / argv[0]), *argv[1:]],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    give_up = time.monotonic() + deadline
    try:
        for line in proc.stderr:  # the command logs at least once a second here
            seen.append(line)
            if marker in line or time.monotonic() > give_up:
                break
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = "".join(seen) + rest
    assert marker in text, text
    return proc.returncode, text


@pytest.mark.parametrize("command", COMMANDS)
def test_version_exits_0_with_the_package_and_schema_versions(command: str) -> None:
    done = run(command, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{command} 0.") and "(protocol schema 1)" in done.stdout


def test_engine_ctl_has_version_too() -> None:
    done = run("evengine", "ctl", "--version")
    assert done.returncode == 0 and done.stdout.startswith("evengine 0.")


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--metrics", "nonsense"], "--metrics"),
        (["--log-format", "xml"], "--log-format"),
        (["--config", "/nonexistent/ev.yaml"], "config"),
    ],
)
def test_a_bad_setting_exits_2_with_one_line(
    command: str, flags: list[str], named: str, tmp_path: Path
) -> None:
    done = run(command, *flags, *(["list"] if command == "evdriver" else []))
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"{command}: error: ") and named in line


@pytest.mark.parametrize(
    ("command", "interval"),
    [
        ("evcentral", "--heartbeat-interval"),
        ("evengine", "--manual-timeout"),
        ("evmonitor", "--health-interval"),
        ("evdriver", "--answer-timeout"),
    ],
)
def test_a_negative_interval_or_a_huge_yaml_number_exits_2(
    command: str, interval: str, tmp_path: Path
) -> None:
    tail = ["list"] if command == "evdriver" else []
    done = run(command, interval, "-1", *tail)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert interval in line
    config = tmp_path / "c.yaml"
    config.write_text(f"{interval.removeprefix('--').replace('-', '_')}: {'9' * 400}\n")
    done = run(command, "--config", str(config), *tail)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert "Traceback" not in line and len(line) < 300


def test_the_central_logs_json_lines_and_stops_with_0(tmp_path: Path) -> None:
    code, text = serve_until(
        [
            "evcentral", "--log-format", "json",
            "--kafka", f"127.0.0.1:{closed_port()}", "--db", str(tmp_path / "c.db"),
            "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0",
        ],
        "monitor port open",
    )  # fmt: skip
    assert code == 0
    events = json_lines(text)
    assert {e["component"] for e in events} == {"evcentral"}
    opened = next(e for e in events if e["message"] == "monitor port open")
    assert opened["address"] and opened["level"] == "INFO"


def test_the_engine_logs_json_lines_with_its_cp_as_a_field(tmp_path: Path) -> None:
    """No broker: it waits for its directives (never "engine ready"), then stops cleanly."""
    code, text = serve_until(
        [
            "evengine", "--log-format", "json", "--cp-id", "CP-77",
            "--kafka", f"127.0.0.1:{closed_port()}", "--listen", "127.0.0.1:0",
            "--control-socket", "", "--console", "off",
        ],
        "broker (reading directives) unreachable",
    )  # fmt: skip
    assert code == 0
    events = json_lines(text)
    assert not [e for e in events if e["message"] == "engine ready"]
    stopped = next(e for e in events if e["message"] == "engine stopped")
    assert stopped["cp"] == "CP-77"


def test_the_monitor_honours_debug_and_logs_json(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{closed_port()}"
    code, text = serve_until(
        [
            "evmonitor", "--log-format", "json", "--log-level", "DEBUG", "--cp-id", "CP-5",
            "--engine", dead, "--central", dead, "--state-dir", str(tmp_path),
            "--registration-token", "t",
        ],
        "monitor starting",
    )  # fmt: skip
    assert code == 0
    events = json_lines(text)
    assert any(e["level"] == "DEBUG" for e in events)
    starting = next(e for e in events if e["message"] == "monitor starting")
    assert starting["cp"] == "CP-5"


def test_the_monitor_without_debug_logs_no_debug_lines(tmp_path: Path) -> None:
    dead = f"127.0.0.1:{closed_port()}"
    code, text = serve_until(
        [
            "evmonitor", "--log-format", "json", "--cp-id", "CP-5", "--engine", dead,
            "--central", dead, "--state-dir", str(tmp_path), "--registration-token", "t",
        ],
        "monitor starting",
    )  # fmt: skip
    assert code == 0
    assert all(e["level"] != "DEBUG" for e in json_lines(text))


def test_the_driver_logs_json_lines() -> None:
    done = run(
        "evdriver", "--id", "D1", "--kafka", f"127.0.0.1:{closed_port()}",
        "--connect-attempts", "1", "--json", "--log-format", "json", "--log-level", "DEBUG",
        "list",
    )  # fmt: skip
    assert done.returncode == 6
    assert {e["component"] for e in json_lines(done.stderr)} == {"evdriver"}
    (error,) = (json.loads(line) for line in done.stdout.splitlines())
    assert error["code"] == "broker_unreachable"
