"""The pytest plugin every suite loads (root ``conftest.py``): the session's broker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from evproto.kafka import KafkaSettings

from evstack.broker import EmbeddedBroker

__all__ = ["embedded_broker", "kafka_settings"]


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
