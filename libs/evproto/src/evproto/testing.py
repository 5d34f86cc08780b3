"""pytest fixtures shared by every test suite (loaded by the root conftest)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from evproto.broker import EmbeddedBroker
from evproto.kafka import KafkaSettings

__all__ = ["embedded_broker", "eventually", "kafka_settings"]


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One real Tansu broker for the whole test session, topics created."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    broker = EmbeddedBroker(log_path=log_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_settings(embedded_broker: EmbeddedBroker) -> KafkaSettings:
    return KafkaSettings(embedded_broker.bootstrap, client_id="tests", session_timeout_ms=6000)


async def eventually(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` at the deadline.

    The one way a test waits: for an event, with a deadline, never a bare sleep.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.02)
