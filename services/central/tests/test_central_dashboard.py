"""The operator dashboard in a real headless Chromium against an in-process central:
live rows, STOP from the page. (tests/dashboard covers every view on a real process.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from evcentral.app import Central
from evproto.states import CpState, Health
from evstack.browser import chromium_async


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    async with chromium_async() as browser:
        yield await browser.new_page()


async def test_rows_follow_the_cp_live_and_stop_works(
    page: Any, central: Central, monitors, new_id, wait_until
) -> None:
    cp_id = new_id("CP")
    monitor = await monitors.online(central, cp_id, location="Harbour 4", price=0.42)
    await wait_until(lambda: central.registry.state_of(cp_id) is CpState.ACTIVE, what="ACTIVE")
    await page.goto(f"http://127.0.0.1:{central.http_port}/")
    await page.get_by_label("Access token").fill("op-token")
    await page.get_by_role("button", name="Sign in").click()
    row = page.locator(f'tr[data-cp-id="{cp_id}"]')
    await row.and_(page.locator('[data-state="ACTIVE"]')).wait_for(timeout=10_000)
    text = await row.inner_text()
    assert "Harbour 4" in text and "0.42 €/kWh" in text and "Active" in text

    # the CP breaks: its row says so without a reload
    monitor.health = Health.KO
    await monitor.status(Health.KO)
    await page.locator(f'tr[data-cp-id="{cp_id}"][data-state="BROKEN_DOWN"]').wait_for(
        timeout=10_000
    )
    assert "Broken down" in await row.inner_text()
    await page.get_by_role("link", name="Live log").click()
    await page.get_by_text(f"{cp_id} reports KO").wait_for(timeout=10_000)

    # healthy again, then STOP from the row's button, named for its CP
    monitor.health = Health.OK
    await monitor.status(Health.OK)
    await page.get_by_role("link", name="Charging points").first.click()
    await page.locator(f'tr[data-cp-id="{cp_id}"][data-state="ACTIVE"]').wait_for(timeout=10_000)
    await page.get_by_role("button", name=f"Stop {cp_id}").click()
    await page.locator(f'tr[data-cp-id="{cp_id}"][data-state="STOPPED"]').wait_for(timeout=10_000)
    assert "Out of Order" in await row.inner_text()
    assert central.registry.cps[cp_id].out_of_service
    await page.get_by_role("button", name=f"Resume {cp_id}").click()
    await page.locator(f'tr[data-cp-id="{cp_id}"][data-state="ACTIVE"]').wait_for(timeout=10_000)
