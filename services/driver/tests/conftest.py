"""Driver test fixtures: a scripted central+engine on the real broker, and driver processes.

The helpers live beside this file (``driver_scripted``, ``driver_processes``).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test folder on sys.path; the helper modules
# beside this file (driver_*.py) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from driver_processes import DriverLauncher
from driver_scripted import Script, ScriptedCentral
from evproto.kafka import KafkaSettings
from evstack.waiting import eventually


@pytest.fixture
async def central(kafka_settings: KafkaSettings) -> AsyncIterator[ScriptedCentral]:
    peer = ScriptedCentral(kafka_settings, {})
    await peer.start()
    yield peer
    await peer.close()


@pytest.fixture
async def drivers(kafka_settings: KafkaSettings, tmp_path: Path) -> AsyncIterator[DriverLauncher]:
    launcher = DriverLauncher(kafka_settings.bootstrap, tmp_path / "state")
    yield launcher
    for driver in launcher.started:
        if driver.proc.returncode is None:
            driver.proc.kill()
            await driver.proc.wait()


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Ids unique to this test: the broker (and its topics) live for the whole session."""
    token = uuid.uuid4().hex[:6]
    return lambda name: f"{name}-{token}"


@pytest.fixture
def script() -> type[Script]:
    """The :class:`Script` class (conftest modules are not importable from tests)."""
    return Script


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[Any]]:
    """``await wait_until(condition, timeout, what)`` (evstack.waiting's ``eventually``)."""
    return eventually
