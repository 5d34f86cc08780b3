"""The driver's settings: flags, ``EV_…`` variables or the YAML file (evproto.config)."""

from __future__ import annotations

import dataclasses

from evproto.config import LOG_LEVELS, setting
from evproto.errors import ConfigError
from evproto.kafka import KafkaSettings
from evproto.kafka_options import KafkaOptions

from evdriver.ids import id_problem

__all__ = ["DriverSettings"]


@dataclasses.dataclass(frozen=True, slots=True)
class DriverSettings(KafkaOptions):
    id: str = setting("", help="this driver's id (required; letters, digits or ._:@-)")
    state_dir: str = setting(
        ".evdriver", help="keeps <id>.json: the current or last session", metavar="DIR"
    )
    answer_timeout: float = setting(
        30.0,
        help="seconds to wait for the central's answer to a request",
        metavar="S",
        above=0,
        maximum=3600,
    )
    stop_wait: float = setting(
        10.0,
        help="seconds to wait for the ticket after asking to stop a supply",
        metavar="S",
        minimum=0,
        maximum=3600,
    )
    connect_attempts: int = setting(
        4,
        help="tries to reach the broker (exponential back-off) before giving up",
        metavar="N",
        minimum=1,
        maximum=100,
    )
    json: bool = setting(False, help="print one JSON object per event instead of text")
    metrics: str = setting(
        "",
        help="serve /metrics on HOST:PORT (idle, batch, interactive); empty: off",
        metavar="HOST:PORT",
        address=True,
    )
    log_level: str = setting(
        "WARNING", help="the least severe diagnostics written to stderr", choices=LOG_LEVELS
    )

    def __post_init__(self) -> None:
        KafkaOptions.__post_init__(self)  # zero-argument super() fails in slotted dataclasses
        if not self.id:
            raise ConfigError("--id (or EV_ID) is required: this driver's id, e.g. --id D1")
        problem = id_problem(self.id)
        if problem is not None:
            raise ConfigError(f"--id: {problem}")

    def kafka_settings(self) -> KafkaSettings:
        return self.kafka_settings_for(f"evdriver.{self.id}")
