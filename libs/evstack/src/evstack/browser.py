"""Debian's Chromium (``/usr/bin/chromium``) driven by playwright, headless, for the
tests of the operator dashboard; skipped where missing, required under CI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from evstack.tools import require_tool

__all__ = ["CHROMIUM", "chromium", "chromium_async"]

CHROMIUM = "/usr/bin/chromium"
# No sandbox (containers, root), no GPU, and nothing that phones home during a test.
_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
_PURPOSE = "to drive the dashboard (Debian package chromium: apt-get install chromium)"


@contextmanager
def chromium() -> Iterator[Any]:
    """A launched browser (playwright's sync API), closed on exit; skips or fails
    (CI) without Chromium. Sync playwright runs its own event loop: keep it out of
    async tests."""
    executable = require_tool(CHROMIUM, _PURPOSE)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@asynccontextmanager
async def chromium_async() -> AsyncIterator[Any]:
    """The same browser through playwright's async API, for async tests."""
    executable = require_tool(CHROMIUM, _PURPOSE)
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
