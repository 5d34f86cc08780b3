"""The driver's settings: flags, ``EV_…`` variables or the YAML file (evproto.config)."""

from __future__ import annotations

import dataclasses

from evproto.config import setting
from evproto.kafka import KafkaSettings
from evproto.kafka_options import KafkaOptions

__all__ = ["DriverSettings"]


@dataclasses.dataclass(frozen=True, slots=True)
class DriverSettings(KafkaOptions):
    id: str = setting("", help="this driver's id (required; letters, digits or ._:@-)")
    state_dir: str = setting(
        ".evdriver", help="keeps <id>.json: the current or last session", metavar="DIR"
    )
    answer_timeout: float = setting(
        30.0, help="seconds to wait for the central's answer to a request", metavar="S"
    )
    stop_wait: float = setting(
        10.0, help="seconds to wait for the ticket after asking to stop a supply", metavar="S"
    )
    connect_attempts: int = setting(
        4, help="tries to reach the broker (exponential back-off) before giving up", metavar="N"
    )
    json: bool = setting(False, help="print one JSON object per event instead of text")
    metrics: str = setting(
        "", help="HOST:PORT to serve /metrics on (idle, batch, interactive)", metavar="HOST:PORT"
    )
    log_level: str = setting("WARNING", help="log level of the diagnostics on stderr")

    def kafka_settings(self) -> KafkaSettings:
        return self.kafka_settings_for(f"evdriver.{self.id}")
