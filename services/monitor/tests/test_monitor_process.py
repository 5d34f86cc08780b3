"""``evmonitor`` as a real process: exit codes, signals, metrics."""

from __future__ import annotations

import asyncio
import signal
import socket
import urllib.error
import urllib.request

import pytest
from evproto import auth
from evproto.states import Health
from evstack.broker import free_port

pytestmark = pytest.mark.e2e


def flags(rig, *extra: str) -> list[str]:
    return [
        "--cp-id", "CP-0",
        "--engine", rig.engine.address,
        "--central", rig.central.address,
        "--state-dir", str(rig.state_dir),
        "--health-interval", "0.2",
        "--health-timeout", "0.3",
        "--retry-cap", "0.5",
        *extra,
    ]  # fmt: skip


@pytest.fixture
def token_file(rig, tmp_path):
    path = tmp_path / "registration-token"
    path.write_text(rig.central.token + "\n")
    return path


async def test_sigterm_closes_both_links_with_eot_and_exits_0(rig, spawn_monitor, token_file):
    process = await spawn_monitor(*flags(rig), env={"EV_REGISTRATION_TOKEN_FILE": str(token_file)})
    await rig.eventually(lambda: rig.central.last_health() is Health.OK, 10.0, "Status OK")

    process.proc.send_signal(signal.SIGTERM)
    assert await process.wait() == 0, process.log_text()
    await rig.eventually(lambda: rig.central.close_reasons == ["peer sent EOT"], what="EOT")
    await rig.eventually(lambda: rig.engine.close_reasons == ["peer sent EOT"], what="EOT")
    assert "monitor stopped" in process.log_text()


async def test_sigint_exits_0(rig, spawn_monitor, token_file):
    process = await spawn_monitor(*flags(rig, "--registration-token-file", str(token_file)))
    await rig.eventually(lambda: rig.central.last_health() is Health.OK, 10.0, "Status OK")
    process.proc.send_signal(signal.SIGINT)
    assert await process.wait() == 0, process.log_text()


async def test_a_rejected_secret_exits_3_naming_the_cause(rig, spawn_monitor):
    rig.state_dir.mkdir()
    rig.secret_file.write_text(auth.new_secret())
    rig.central.stored_keys["CP-0"] = auth.stored_key(auth.new_secret())

    process = await spawn_monitor(*flags(rig))
    assert await process.wait() == 3, process.log_text()
    log = process.log_text()
    assert "credentials rejected, exiting" in log
    assert "rejected the secret of CP-0" in log
    assert "bad proof" in log  # the central's reason


async def test_an_engine_of_another_cp_exits_2(rig, spawn_monitor, token_file):
    process = await spawn_monitor(
        *flags(rig, "--cp-id", "CP-4", "--registration-token-file", str(token_file))
    )
    assert await process.wait() == 2, process.log_text()
    assert "the engine at" in process.log_text()
    assert "is CP-0, but this monitor is --cp-id CP-4" in process.log_text()


async def test_no_secret_and_no_token_exits_2(rig, spawn_monitor):
    process = await spawn_monitor(*flags(rig))
    assert await process.wait() == 2, process.log_text()
    assert "no registration token" in process.log_text()


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--health-interval", "0"], "--health-interval: 0.0 must be more than 0"),
        (["--engine", "nowhere"], "--engine: 'nowhere' is not HOST:PORT"),
        (["--cp-id", "CP 0"], "--cp-id: 'CP 0' is not a valid id"),
    ],
)
async def test_bad_settings_exit_2_with_the_reason(rig, spawn_monitor, bad, message):
    process = await spawn_monitor(*flags(rig), *bad)
    assert await process.wait() == 2
    assert message in process.log_text()


async def test_a_metrics_port_in_use_exits_2(rig, spawn_monitor, token_file):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = await spawn_monitor(
            *flags(
                rig, "--metrics", f"127.0.0.1:{port}", "--registration-token-file", str(token_file)
            )
        )
        assert await process.wait() == 2, process.log_text()
    assert f"--metrics 127.0.0.1:{port}: cannot listen" in process.log_text()


async def test_metrics_are_served(rig, spawn_monitor, token_file):
    port = free_port()
    process = await spawn_monitor(
        *flags(rig, "--metrics", f"127.0.0.1:{port}"),
        env={"EV_REGISTRATION_TOKEN_FILE": str(token_file)},
    )
    await rig.eventually(lambda: len(rig.central.statuses) >= 2, 10.0, "Status reports")

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            return str(answer.read().decode())

    text = await asyncio.to_thread(scrape)
    for line in (
        "evcharging_monitor_engine_connected 1.0",
        "evcharging_monitor_central_connected 1.0",
        'evcharging_monitor_reconnect_attempts_total{peer="central"} 0.0',
        'evcharging_monitor_protocol_errors_total{kind="bad_lrc"} 0.0',
        'evcharging_monitor_reports_total{health="KO"} 0.0',
        "evcharging_monitor_health_check_latency_seconds_count",
    ):
        assert line in text
    assert await asyncio.to_thread(http_status, f"http://127.0.0.1:{port}/readyz") == 200
    process.proc.send_signal(signal.SIGTERM)
    assert await process.wait() == 0


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


async def test_readyz_answers_503_until_the_cp_is_authenticated_at_the_central(
    rig, spawn_monitor, token_file
):
    port = free_port()
    unreachable = f"127.0.0.1:{free_port()}"
    argv = flags(rig, "--metrics", f"127.0.0.1:{port}")
    argv[argv.index("--central") + 1] = unreachable
    process = await spawn_monitor(*argv, env={"EV_REGISTRATION_TOKEN_FILE": str(token_file)})
    url = f"http://127.0.0.1:{port}/readyz"
    await rig.eventually(lambda: http_status_or_0(url) == 503, 10.0, "/readyz answers 503")
    process.proc.send_signal(signal.SIGTERM)
    assert await process.wait() == 0, process.log_text()


def http_status_or_0(url: str) -> int:
    try:
        return http_status(url)
    except OSError:
        return 0  # not listening yet
