"""``evcentral`` as a real process, with the command line the chart and ``make run`` use."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from evproto.states import Health
from evstack.broker import EmbeddedBroker, free_port
from evstack.localstack import LocalStack, ManagedProcess, console_script

pytestmark = pytest.mark.e2e


def _get(url: str, token: str = "") -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, None


async def get(url: str, token: str = "") -> tuple[int, Any]:
    return await asyncio.to_thread(_get, url, token)


async def test_the_process_serves_and_stops_cleanly_on_sigterm(
    tmp_path: Path, embedded_broker: EmbeddedBroker, monitors, wait_until
) -> None:
    stack = LocalStack(tmp_path, kafka_port=embedded_broker.port)
    central = stack.start_central()
    try:

        async def ready() -> bool:
            return (await get(f"{stack.http_url}/readyz"))[0] == 200

        await wait_until(ready, 30, "the central process to be ready")
        monitor = monitors("CP-P1", stack.listen_port)
        result = await monitor.register(token=stack.registration_token, location="Depot")
        assert result.accepted, result.reason
        await monitor.status(Health.OK)

        async def active() -> dict[str, Any] | None:
            code, body = await get(f"{stack.http_url}/api/cps/CP-P1", stack.viewer_token)
            return body if code == 200 and body["state"] == "ACTIVE" else None

        tile = await wait_until(active, 10, "CP-P1 ACTIVE over HTTP")
        assert tile["location"] == "Depot"
        await monitor.close()
    finally:
        code = await asyncio.to_thread(central.stop, 12.0)  # SIGTERM, then wait
    log = central.log_text()
    assert code == 0, log
    assert "central stopped" in log and "Traceback" not in log
    assert "generated" not in log  # the token came from the file


async def test_a_central_without_tokens_keeps_generated_ones_in_0600_files(
    tmp_path: Path, embedded_broker: EmbeddedBroker, wait_until
) -> None:
    argv = [
        console_script("evcentral"),
        "--kafka", embedded_broker.bootstrap,
        "--db", str(tmp_path / "c.db"),
        "--listen", f"127.0.0.1:{free_port()}",
        "--http", f"127.0.0.1:{free_port()}",
    ]  # fmt: skip
    proc = ManagedProcess("central", argv, {}, tmp_path / "central.log").start()
    try:
        await wait_until(lambda: "published every CP state" in proc.log_text(), 30, "start")
    finally:
        code = await asyncio.to_thread(proc.stop, 12.0)
    assert code == 0
    log = proc.log_text()
    for name in ("operator-token", "viewer-token"):
        path = tmp_path / f"c.db.{name}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        token = path.read_text().strip()
        assert len(token) >= 32 and token not in log  # a secret never goes to the log
        lines = [line for line in log.splitlines() if name.replace("-", " ") in line]
        assert len(lines) == 1 and str(path) in lines[0]
    # a restart keeps them: the viewer's pseudonyms stay stable
    again = ManagedProcess("central", argv, {}, tmp_path / "again.log").start()
    try:
        await wait_until(lambda: "published every CP state" in again.log_text(), 30, "restart")
    finally:
        assert await asyncio.to_thread(again.stop, 12.0) == 0
    assert "generated" not in again.log_text()


def test_bad_settings_exit_2_with_a_message() -> None:
    done = subprocess.run(
        [console_script("evcentral"), "--listen", "nowhere"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--listen" in done.stderr and "Traceback" not in done.stderr
