"""The engine's settings: exactly the flags of docs/interfaces.md, validated at start."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

from evproto.config import address, identifier, seconds, setting
from evproto.errors import ConfigError
from evproto.kafka import KafkaSettings
from evproto.kafka.options import KafkaOptions
from evproto.vocabulary import DEFAULT_CONTROL_SOCKET, MAX_PRICE_EUR_PER_KWH

__all__ = ["ConsoleMode", "EngineSettings"]


class ConsoleMode(enum.StrEnum):
    AUTO = "auto"  # the console when stdin is a terminal
    ON = "on"
    OFF = "off"


@dataclass(frozen=True, slots=True)
class EngineSettings(KafkaOptions):
    cp_id: str = identifier("", "the CP id (required), e.g. CP-0")
    listen: str = address("0.0.0.0:5500", "TCP port its monitor connects to")
    location: str = setting(
        "Unknown", help="where the CP is (sent at registration)", metavar="TEXT"
    )
    price: str = setting("", help="€/kWh proposed at registration; empty = none", metavar="EUR")
    power_kw: float = setting(22.0, help="supply power in kW", metavar="KW", above=0, maximum=1000)
    plug_delay: float = setting(
        2.0,
        help="seconds after a start directive until the vehicle is plugged automatically; "
        "-1 = wait for the plug key / `evengine ctl plug`",
        metavar="SECONDS",
    )
    manual_timeout: float = seconds(
        180.0, "seconds a manual supply waits for the central's start directive"
    )
    control_socket: str = setting(
        DEFAULT_CONTROL_SOCKET,
        help="Unix socket `evengine ctl` talks to; empty = off",
        metavar="PATH",
    )
    console: str = setting(
        "auto",
        help="keyboard console: auto (stdin is a TTY), on, off",
        choices=[m.value for m in ConsoleMode],
    )

    def __post_init__(self) -> None:
        KafkaOptions.__post_init__(self)  # zero-argument super() fails in slotted dataclasses
        if not self.cp_id:
            raise ConfigError("--cp-id is required (e.g. --cp-id CP-0 or EV_CP_ID=CP-0)")
        if not self.location or len(self.location) > 120:
            raise ConfigError("--location must be 1-120 characters")
        _ = self.proposed_price  # validates
        if self.plug_delay != -1 and not (0 <= self.plug_delay <= 3600):
            raise ConfigError(f"--plug-delay {self.plug_delay}: use 0-3600 seconds, or -1")

    @property
    def proposed_price(self) -> float | None:
        """``--price`` as €/kWh, None when empty."""
        if not self.price.strip():
            return None
        try:
            value = float(self.price)
        except ValueError:
            raise ConfigError(f"--price {self.price!r} is not a number (€/kWh)") from None
        if not math.isfinite(value) or not (0 <= value <= MAX_PRICE_EUR_PER_KWH):
            raise ConfigError(f"--price {self.price!r}: use 0-{MAX_PRICE_EUR_PER_KWH:g} €/kWh")
        return value

    @property
    def auto_plug_delay(self) -> float | None:
        """Seconds until the automatic plug, None when the plug key is awaited."""
        return None if self.plug_delay == -1 else self.plug_delay

    @property
    def console_mode(self) -> ConsoleMode:
        return ConsoleMode(self.console.lower())

    def kafka_settings(self) -> KafkaSettings:
        return self.kafka_settings_for(f"evengine-{self.cp_id}")
