"""The driver's settings: flags, ``EV_…`` variables or the YAML file (evproto.config)."""

from __future__ import annotations

import dataclasses

from evproto.config import LOG_LEVELS, address, count, identifier, seconds, setting
from evproto.errors import ConfigError
from evproto.kafka import KafkaSettings
from evproto.kafka.options import KafkaOptions

__all__ = ["DriverSettings"]


@dataclasses.dataclass(frozen=True, slots=True)
class DriverSettings(KafkaOptions):
    id: str = identifier("", "this driver's id (required)")
    state_dir: str = setting(
        ".evdriver",
        help="keeps <id>.json (the current or last session) and <id>.secret (the credential)",
        metavar="DIR",
    )
    enrollment_token: str = setting(
        "",
        help="token to enroll this driver on first use (default: <state-dir>/enrollment-token "
        "if that file exists)",
        secret=True,
    )
    answer_timeout: float = seconds(30.0, "seconds to wait for the central's answer to a request")
    stop_wait: float = seconds(
        10.0, "seconds to wait for the ticket after asking to stop a supply", zero_ok=True
    )
    connect_attempts: int = count(
        4, "tries to reach the broker (exponential back-off) before giving up", maximum=100
    )
    json: bool = setting(False, help="print one JSON object per event instead of text")
    metrics: str = address("", "serve /metrics on HOST:PORT (idle, batch, interactive); empty: off")
    log_level: str = setting(
        "WARNING", help="the least severe diagnostics written to stderr", choices=LOG_LEVELS
    )

    def __post_init__(self) -> None:
        KafkaOptions.__post_init__(self)  # zero-argument super() fails in slotted dataclasses
        if not self.id:
            raise ConfigError("--id (or EV_ID) is required: this driver's id, e.g. --id D1")

    def kafka_settings(self) -> KafkaSettings:
        return self.kafka_settings_for(f"evdriver.{self.id}")
