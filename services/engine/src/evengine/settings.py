"""The engine's settings: exactly the flags of docs/interfaces.md, validated at start."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from evproto.config import parse_hostport, setting
from evproto.errors import ConfigError
from evproto.kafka import KafkaSettings
from evproto.kafka_options import KafkaOptions

__all__ = ["MAX_PRICE", "ConsoleMode", "EngineSettings"]

MAX_PRICE = 100.0  # €/kWh, the same bound as the messages
_CP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}\Z")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConsoleMode(enum.StrEnum):
    AUTO = "auto"  # the console when stdin is a terminal
    ON = "on"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class EngineSettings(KafkaOptions):
    cp_id: str = setting("", help="the CP id (required), e.g. CP-0", metavar="ID")
    listen: str = setting(
        "0.0.0.0:5500", help="TCP port its monitor connects to", metavar="HOST:PORT"
    )
    location: str = setting(
        "Unknown", help="where the CP is (sent at registration)", metavar="TEXT"
    )
    price: str = setting("", help="€/kWh proposed at registration; empty = none", metavar="EUR")
    power_kw: float = setting(22.0, help="supply power in kW", metavar="KW")
    plug_delay: float = setting(
        2.0,
        help="seconds after a start directive until the vehicle is plugged automatically; "
        "-1 = wait for the plug key / `evengine ctl plug`",
        metavar="SECONDS",
    )
    manual_timeout: float = setting(
        180.0, help="seconds a manual supply waits for the central's start directive", metavar="S"
    )
    control_socket: str = setting(
        "/tmp/evengine.sock",
        help="Unix socket `evengine ctl` talks to; empty = off",
        metavar="PATH",
    )
    console: str = setting("auto", help="keyboard console: auto (stdin is a TTY), on, off")
    metrics: str = setting("", help="HOST:PORT serving /metrics; empty = off", metavar="HOST:PORT")
    log_level: str = setting("INFO", help="DEBUG, INFO, WARNING or ERROR", metavar="LEVEL")

    def __post_init__(self) -> None:
        KafkaOptions.__post_init__(self)  # zero-argument super() fails in slotted dataclasses
        if not self.cp_id:
            raise ConfigError("--cp-id is required (e.g. --cp-id CP-0 or EV_CP_ID=CP-0)")
        if not _CP_ID.match(self.cp_id):
            raise ConfigError(f"--cp-id {self.cp_id!r}: use 1-64 letters, digits or ._:@-")
        if not self.location or len(self.location) > 120:
            raise ConfigError("--location must be 1-120 characters")
        parse_hostport(self.listen, what="--listen")
        if self.metrics:
            parse_hostport(self.metrics, what="--metrics")
        _ = self.proposed_price  # validates
        if not (0 < self.power_kw <= 1000):
            raise ConfigError(f"--power-kw {self.power_kw}: must be above 0 and at most 1000")
        if self.plug_delay != -1 and not (0 <= self.plug_delay <= 3600):
            raise ConfigError(f"--plug-delay {self.plug_delay}: use 0-3600 seconds, or -1")
        if not (0 < self.manual_timeout <= 3600):
            raise ConfigError(f"--manual-timeout {self.manual_timeout}: use 1-3600 seconds")
        if self.console not in {m.value for m in ConsoleMode}:
            raise ConfigError(f"--console {self.console!r}: use auto, on or off")
        if self.log_level.upper() not in _LOG_LEVELS:
            raise ConfigError(
                f"--log-level {self.log_level!r}: use one of {', '.join(_LOG_LEVELS)}"
            )

    @property
    def proposed_price(self) -> float | None:
        """``--price`` as €/kWh, None when empty."""
        if not self.price.strip():
            return None
        try:
            value = float(self.price)
        except ValueError:
            raise ConfigError(f"--price {self.price!r} is not a number (€/kWh)") from None
        if not math.isfinite(value) or not (0 <= value <= MAX_PRICE):
            raise ConfigError(f"--price {self.price!r}: use 0-{MAX_PRICE:g} €/kWh")
        return value

    @property
    def auto_plug_delay(self) -> float | None:
        """Seconds until the automatic plug, None when the plug key is awaited."""
        return None if self.plug_delay == -1 else self.plug_delay

    @property
    def console_mode(self) -> ConsoleMode:
        return ConsoleMode(self.console)

    def kafka_settings(self) -> KafkaSettings:
        return self.kafka_settings_for(f"evengine-{self.cp_id}")
