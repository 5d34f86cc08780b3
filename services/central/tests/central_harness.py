"""The central under test, in this test's event loop, and Kafka peers around it.

Imported by name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from central_fakes import OPERATOR_TOKEN, REGISTRATION_TOKEN, VIEWER_TOKEN, Credentials, unique
from evcentral.app import Central
from evcentral.kafka_io import CONSUMED_TOPICS
from evcentral.settings import CentralSettings
from evproto.kafka import KafkaSettings, pin_start_positions
from evproto.topics import Topic
from evstack.kafka_probe import KafkaProbe
from evstack.waiting import eventually
from prometheus_client import CollectorRegistry


class CentralHarness:
    """Starts centrals in this test's event loop; each on its own metrics registry."""

    def __init__(
        self, tmp_path: Path, kafka: KafkaSettings, credentials: Credentials | None = None
    ) -> None:
        self.tmp_path = tmp_path
        self.kafka = kafka
        self.group = unique("evcentral-test")
        self._group_ready = False
        # the credentials enroll drivers at the running centrals
        self.running: list[Central] = (credentials or Credentials()).centrals

    def settings(self, **overrides: Any) -> CentralSettings:
        values: dict[str, Any] = {
            "kafka": self.kafka.bootstrap,
            "db": str(self.tmp_path / "central.db"),
            "listen": "127.0.0.1:0",
            "http": "127.0.0.1:0",
            "operator_token": OPERATOR_TOKEN,
            "viewer_token": VIEWER_TOKEN,
            "registration_token": REGISTRATION_TOKEN,
            "heartbeat_interval": 0.5,
            "missed_heartbeats": 4,
            "abort_grace": 1.0,
            "handshake_timeout": 3.0,
            "create_topics": False,
            # fake engines report faster than real time; the physics bound is tested apart
            "energy_margin_kwh": 100.0,
        }
        values.update(overrides)
        return CentralSettings(**values)

    async def start(self, *, wait_consuming: bool = True, **overrides: Any) -> Central:
        if wait_consuming and not self._group_ready:
            # a new group starts at the end of the topics: a test sees only its records
            await asyncio.to_thread(
                pin_start_positions,
                self.kafka,
                self.group,
                {topic: None for topic in CONSUMED_TOPICS},
                10.0,
            )
            self._group_ready = True
        central = Central(
            self.settings(**overrides),
            metrics_registry=CollectorRegistry(),
            consumer_group=self.group,
        )
        await central.start()
        self.running.append(central)
        if wait_consuming:
            await eventually(lambda: central.kafka.consuming, 15, "the central to consume")
        return central

    async def stop(self, central: Central) -> None:
        if central in self.running:
            self.running.remove(central)
            await central.stop()


class PeerFactory:
    """Kafka peers that prove what they publish and open what is sealed for drivers."""

    def __init__(self, settings: KafkaSettings, credentials: Credentials | None = None) -> None:
        self.settings = settings
        self.credentials = credentials or Credentials()
        self.made: list[KafkaProbe] = []

    async def _make(
        self, topics: list[Topic], keys: frozenset[str] | None, start: str = "latest"
    ) -> KafkaProbe:
        c = self.credentials
        peer = KafkaProbe(self.settings, topics, keys, start, prove=c.prove, open_sealed=c.open)
        self.made.append(peer)
        return await peer.start()

    async def driver(self, driver_id: str) -> KafkaProbe:
        return await self._make(
            [Topic.SUPPLY_RESPONSES, Topic.DRIVER_UPDATES], frozenset({driver_id})
        )

    async def engine(self, cp_id: str) -> KafkaProbe:
        """Reads its directives and the answers to its manual requests (keyed by CP id)."""
        return await self._make([Topic.DIRECTIVES, Topic.SUPPLY_RESPONSES], frozenset({cp_id}))

    async def watcher(
        self, topic: Topic, keys: frozenset[str] | None = None, start: str = "latest"
    ) -> KafkaProbe:
        return await self._make([topic], keys, start)
