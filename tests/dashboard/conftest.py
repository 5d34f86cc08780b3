"""Fixtures of the dashboard tests: a real central process holding a 10,000-CP fleet,
and Debian's Chromium driven by playwright.

The fleet is seeded straight into the central's real SQLite file before it starts
(the cheapest real way to 10,000 registered CPs: what the central loads is what a
registration would have stored); one real CP (engine and monitor processes, ``CP-0``)
registers itself and gives the page something live. Helpers are importable modules
beside this file (dash_*.py).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from evstack.browser import chromium
from evstack.fixtures import show_logs_on_failure

# --import-mode=importlib puts no test folder on sys.path: the helpers beside this file.
sys.path.insert(0, str(Path(__file__).parent))

from dash_fleet import FleetSystem


@pytest.fixture(scope="session")
def fleet(request: pytest.FixtureRequest) -> Iterator[FleetSystem]:
    # A short path: the engine's control socket lives in it (Unix sockets: 107 bytes).
    workdir = Path(tempfile.mkdtemp(prefix="dash-"))
    system = FleetSystem(workdir)
    show_logs_on_failure(request.config, "fleet", system)
    try:
        system.start()
        yield system
    finally:
        system.stop()
    shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")  # sync playwright runs a loop: gone before async tests run
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any, fleet: FleetSystem) -> Iterator[Any]:
    """A fresh tab (its own sessionStorage: signed out) on the dashboard."""
    context = browser.new_context(viewport={"width": 1200, "height": 760}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto(fleet.url)
    try:
        yield tab
    finally:
        context.close()
