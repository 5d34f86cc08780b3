"""`evdriver idle`: the driver pod's main process serves /metrics until SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import urllib.error
import urllib.request

import pytest
from evstack.broker import free_port
from evstack.waiting import eventually

pytestmark = pytest.mark.e2e


def _scrape(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return str(answer.read().decode())
    except (urllib.error.URLError, ConnectionError):
        return None


async def test_idle_serves_metrics_and_exits_0_on_sigterm(drivers, unique) -> None:
    address = f"127.0.0.1:{free_port()}"
    driver = await drivers.start(unique("D"), "--metrics", address, "idle")

    async def scrape() -> str | None:
        return await asyncio.to_thread(_scrape, f"http://{address}/metrics")

    text = await eventually(scrape, 20, "the idle driver's /metrics")
    assert "evcharging_driver_requests_total 0.0" in text
    for outcome in ("completed", "aborted", "cancelled", "denied", "timeout"):
        assert f'evcharging_driver_outcomes_total{{outcome="{outcome}"}} 0.0' in text

    driver.signal(signal.SIGTERM)
    assert await driver.wait(15) == 0
