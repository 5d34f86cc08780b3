"""The operator dashboard in a real headless Chromium: live tiles, STOP from the page."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from typing import Any

import pytest
from evcentral.app import Central
from evproto.states import CpState, Health

CHROMIUM = "/usr/bin/chromium"
_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    if not shutil.which(CHROMIUM):
        if os.environ.get("EV_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{CHROMIUM} is required (EV_REQUIRE_TOOLS=1) but missing")
        pytest.skip(f"{CHROMIUM} is not installed; install Debian's chromium to run this test")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=_ARGS)
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def test_tiles_follow_the_cp_live_and_stop_works(
    page: Any, central: Central, monitors, new_id, wait_until
) -> None:
    cp_id = new_id("CP")
    monitor = await monitors.online(central, cp_id, location="Harbour 4", price=0.42)
    await wait_until(lambda: central.registry.state_of(cp_id) is CpState.ACTIVE, what="ACTIVE")
    await page.goto(f"http://127.0.0.1:{central.http_port}/")
    tile = page.locator(f'.tile[data-cp-id="{cp_id}"]')
    await tile.and_(page.locator('[data-state="ACTIVE"]')).wait_for(timeout=10_000)
    assert "green" in (await tile.get_attribute("class") or "")
    text = await tile.inner_text()
    assert "Harbour 4" in text and "0.42 €/kWh" in text

    # the CP breaks: its tile turns red without a reload
    monitor.health = Health.KO
    await monitor.status(Health.KO)
    await page.locator(f'.tile[data-cp-id="{cp_id}"][data-state="BROKEN_DOWN"]').wait_for(
        timeout=10_000
    )
    assert "red" in (await tile.get_attribute("class") or "")
    log = await page.locator("#log").inner_text()
    assert f"{cp_id} reports KO" in log

    # healthy again, then STOP from the tile's button (the page asks for the token once)
    monitor.health = Health.OK
    await monitor.status(Health.OK)
    await page.locator(f'.tile[data-cp-id="{cp_id}"][data-state="ACTIVE"]').wait_for(timeout=10_000)
    prompts: list[str] = []

    async def answer(dialog: Any) -> None:
        prompts.append(dialog.message)
        await dialog.accept("op-token")

    page.on("dialog", answer)
    await tile.locator('button[data-action="stop"]').click()
    await page.locator(f'.tile[data-cp-id="{cp_id}"][data-state="STOPPED"]').wait_for(
        timeout=10_000
    )
    assert "orange" in (await tile.get_attribute("class") or "")
    assert await tile.locator(".label").text_content() == "Out of Order"
    assert central.registry.cps[cp_id].out_of_service
    assert prompts == ["Operator token"]

    # the token is kept for the session: RESUME does not ask again
    await tile.locator('button[data-action="resume"]').click()
    await page.locator(f'.tile[data-cp-id="{cp_id}"][data-state="ACTIVE"]').wait_for(timeout=10_000)
    assert prompts == ["Operator token"]
