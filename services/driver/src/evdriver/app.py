"""What every command shares: settings, renderer, metrics, signals and the Kafka session."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

from evproto.kafka import KafkaSettings

from evdriver.credentials import DriverSecret, NotEnrolled, enroll, find_token
from evdriver.events import Event, Requested
from evdriver.interrupts import Interrupts
from evdriver.link import DriverLink
from evdriver.metrics import DriverMetrics
from evdriver.render import Renderer
from evdriver.settings import DriverSettings
from evdriver.state import StateStore
from evdriver.watcher import SessionResult, SessionWatcher

__all__ = ["DriverApp"]


@dataclasses.dataclass
class DriverApp:
    settings: DriverSettings
    renderer: Renderer
    metrics: DriverMetrics
    interrupts: Interrupts

    @property
    def driver_id(self) -> str:
        return self.settings.id

    @property
    def kafka(self) -> KafkaSettings:
        return self.settings.kafka_settings()

    def store(self) -> StateStore:
        return StateStore(Path(self.settings.state_dir), self.settings.id)

    async def credential(self) -> bytes:
        """The driver's root key: from its state directory, or enrolled now (first use)."""
        state_dir = Path(self.settings.state_dir)
        secret = DriverSecret(state_dir, self.driver_id)
        key = secret.root_key()
        if key is not None:
            return key
        token = find_token(self.settings.enrollment_token, state_dir)
        if not token:
            raise NotEnrolled(
                f"{self.driver_id} has no credential in {secret.file.path} and no enrollment "
                "token: ask the operator to enroll it (POST /api/drivers) and save the secret "
                "there, or set --enrollment-token"
            )
        link = DriverLink(
            self.kafka,
            self.driver_id,
            None,
            state_dir=None,
            connect_attempts=self.settings.connect_attempts,
        )
        try:
            await link.open()
            new = await enroll(link, self.driver_id, token, self.settings.answer_timeout)
        finally:
            await link.close()
        return secret.save(new)

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[SessionWatcher]:
        """The Kafka link on this driver's partitions and its watcher; BrokerUnavailable if not."""
        key = await self.credential()
        link = DriverLink(
            self.kafka,
            self.driver_id,
            key,
            state_dir=Path(self.settings.state_dir),
            connect_attempts=self.settings.connect_attempts,
        )
        try:
            await link.open()
            yield SessionWatcher(
                link,
                self.store(),
                answer_timeout=self.settings.answer_timeout,
                stop_wait=self.settings.stop_wait,
            )
        finally:
            await link.close()

    async def play(
        self, watcher: SessionWatcher, events: AsyncIterator[Event]
    ) -> SessionResult | None:
        """Show a session's events as they come (Ctrl-C handled); count requests and outcomes."""
        with self.interrupts.following(watcher):
            async for event in events:
                if isinstance(event, Requested):
                    self.metrics.requests.inc()
                self.renderer.show(event)
        if watcher.result is not None:
            self.metrics.count_outcome(watcher.result.outcome)
        return watcher.result
