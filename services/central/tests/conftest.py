"""Fixtures for the central's tests: an in-process central on the embedded broker,
fake monitors speaking the real framed protocol, fake engines and drivers on Kafka.

The helpers live beside this file (``central_fakes``, ``central_harness``).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

# --import-mode=importlib puts no test folder on sys.path; the helper modules
# beside this file (central_*.py) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from central_fakes import (
    Credentials,
    Http,
    MonitorFactory,
    SupplyMessages,
    make_ended_session,
    unique,
)
from central_harness import CentralHarness, PeerFactory
from evcentral.app import Central
from evcentral.records import SessionRecord
from evproto.kafka import KafkaSettings
from evproto.messages import Outcome
from evproto.states import CpState
from evstack.waiting import eventually


@pytest.fixture
def wait_until() -> Callable[..., Awaitable[Any]]:
    return eventually


@pytest.fixture
def new_id() -> Callable[[str], str]:
    return unique


@pytest.fixture
def messages() -> Callable[..., SupplyMessages]:
    return SupplyMessages


@pytest.fixture
def credentials() -> Credentials:
    return Credentials()


@pytest.fixture
async def centrals(
    tmp_path: Path, kafka_settings: KafkaSettings, credentials: Credentials
) -> AsyncIterator[CentralHarness]:
    harness = CentralHarness(tmp_path, kafka_settings, credentials)
    yield harness
    for central in list(harness.running):
        await harness.stop(central)


@pytest.fixture
async def central(centrals: CentralHarness) -> Central:
    return await centrals.start()


@pytest.fixture
async def fleet(central: Central, monitors, new_id, wait_until) -> list[str]:
    """Two registered CPs: one online, one whose monitor is gone (DISCONNECTED)."""
    online, offline = sorted([new_id("CP"), new_id("CP")])
    await monitors.online(central, online, location="North 1", price=0.4)
    gone = monitors(offline, central.monitor_port)
    assert (await gone.register(location="South 2")).accepted
    await gone.close()
    await wait_until(
        lambda: (
            central.registry.state_of(online) is CpState.ACTIVE
            and central.registry.state_of(offline) is CpState.DISCONNECTED
        ),
        what="one CP online, one offline",
    )
    return [online, offline]


@pytest.fixture
async def monitors(credentials: Credentials) -> AsyncIterator[MonitorFactory]:
    factory = MonitorFactory(credentials)
    yield factory
    for monitor in factory.made:
        with contextlib.suppress(Exception):
            await monitor.close()


@pytest.fixture
async def peers(
    kafka_settings: KafkaSettings, credentials: Credentials
) -> AsyncIterator[PeerFactory]:
    factory = PeerFactory(kafka_settings, credentials)
    yield factory
    for peer in factory.made:
        with contextlib.suppress(Exception):
            await peer.close()


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield Http(session)


@pytest.fixture
def ended_session() -> Callable[[str, str, str, Outcome, float], SessionRecord]:
    return make_ended_session
