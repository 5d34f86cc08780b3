"""The monitor process: the engine link and the central link, side by side.

Neither peer being down stops the other loop. Only a permanent error
(``ConfigError``: wrong engine, unusable settings; ``AuthError``: rejected
credentials) or the stop event ends :meth:`Monitor.run`; either link is closed
with EOT on the way out.
"""

from __future__ import annotations

import asyncio
import logging

from evproto.errors import ConfigError
from evproto.logs import kv
from evproto.metrics import serve_metrics
from evproto.proofs import cp_key_from_secret
from prometheus_client import CollectorRegistry

from evmonitor.authentication import Authenticator
from evmonitor.central_link import CentralLink
from evmonitor.credentials import SecretStore
from evmonitor.engine_link import EngineLink
from evmonitor.health import HealthBoard
from evmonitor.metrics import MonitorMetrics
from evmonitor.settings import MonitorSettings
from evmonitor.tasks import first_to_finish

__all__ = ["Monitor"]

log = logging.getLogger("evmonitor")


class Monitor:
    def __init__(
        self, settings: MonitorSettings, registry: CollectorRegistry | None = None
    ) -> None:
        self.settings = settings
        self.metrics = MonitorMetrics(registry)
        self.health = HealthBoard(settings.cp_id)
        self.engine = EngineLink(settings, self.health, self.metrics)
        self.authenticator = Authenticator(
            settings.cp_id,
            SecretStore(settings.secret_path),
            settings.registration_token,
            self.engine.engine_info,
            self.metrics,
            timeout=settings.central_timeout,
            on_secret=self._share_record_key,
        )
        self.central = CentralLink(
            settings, self.health, self.engine, self.authenticator, self.metrics
        )

    def ready(self) -> bool:
        """/readyz: the CP is authenticated at the central (a pod is Ready only then)."""
        connected = f"{self.metrics.prefix}_central_connected"
        return self.metrics.registry.get_sample_value(connected) == 1.0

    def _share_record_key(self, secret: str) -> None:
        """The engine proves its Kafka records with a key derived from the CP secret; it
        never sees the secret (docs/interfaces.md "Proofs on Kafka records")."""
        self.engine.forward_record_key(cp_key_from_secret(secret).hex())

    async def run(self, stop: asyncio.Event) -> None:
        """Watch the engine and report to the central until ``stop`` is set."""
        self.authenticator.check_configured()
        try:
            serve_metrics(self.settings.metrics, self.metrics.registry, ready=self.ready)
        except OSError as exc:
            raise ConfigError(f"--metrics {self.settings.metrics}: cannot listen: {exc}") from None
        log.info(
            "monitor starting %s",
            kv(cp=self.settings.cp_id, engine=self.settings.engine, central=self.settings.central,
               tls=self.settings.central_tls),
        )  # fmt: skip
        await first_to_finish(self.engine.run(), self.central.run(), stop.wait())
        log.info("monitor stopped %s", kv(cp=self.settings.cp_id))
