"""The central's settings: flags, ``EV_…`` variables or a YAML file (docs/interfaces.md)."""

from __future__ import annotations

from dataclasses import dataclass

from evproto.config import setting
from evproto.errors import ConfigError
from evproto.kafka import KafkaSettings
from evproto.kafka_options import KafkaOptions
from evproto.vocabulary import MAX_PRICE_EUR_PER_KWH

__all__ = ["CentralSettings"]


@dataclass(frozen=True, slots=True)
class CentralSettings(KafkaOptions):
    db: str = setting("evcentral.db", help="SQLite database file (WAL)", metavar="PATH")
    listen: str = setting(
        "0.0.0.0:3440", help="TCP address for monitors", metavar="HOST:PORT", address=True
    )
    http: str = setting(
        "0.0.0.0:8080",
        help="dashboard, REST API, /metrics, /healthz, /readyz",
        metavar="HOST:PORT",
        address=True,
    )
    operator_token: str = setting(
        "", help="Bearer token for operator actions (generated and logged if empty)", secret=True
    )
    registration_token: str = setting(
        "",
        help="token a monitor proves to register a CP (empty: registration refused)",
        secret=True,
    )
    default_price: float = setting(
        0.30,
        help="€/kWh for a newly registered CP that proposes none",
        metavar="EUR",
        minimum=0,
        maximum=MAX_PRICE_EUR_PER_KWH,
    )
    heartbeat_interval: float = setting(
        1.0, help="seconds between monitor status reports", metavar="S", above=0, maximum=3600
    )
    missed_heartbeats: int = setting(
        3, help="missed reports before a CP is DISCONNECTED", metavar="N", minimum=1, maximum=1000
    )
    start_timeout: float = setting(
        60.0,
        help="seconds an authorized supply may wait for the plug",
        metavar="S",
        above=0,
        maximum=86400,
    )
    abort_grace: float = setting(
        3.0,
        help="seconds to wait for the engine's ticket after a fault before closing the session",
        metavar="S",
        above=0,
        maximum=3600,
    )
    handshake_timeout: float = setting(
        10.0,
        help="seconds a new monitor connection has to authenticate",
        metavar="S",
        above=0,
        maximum=3600,
    )
    # bounds on what peers may hold (docs/reliability.md); defaults fit 10,000 CPs
    link_error_budget: int = setting(
        20,
        help="protocol errors a monitor link may make in --link-error-window before it is closed",
        metavar="N",
        minimum=1,
    )
    link_error_window: float = setting(
        10.0, help="seconds over which --link-error-budget counts", metavar="S", above=0
    )
    max_pending_monitors: int = setting(
        4096,
        help="monitor connections not yet authenticated, in all (more are refused and counted)",
        metavar="N",
        minimum=1,
    )
    max_pending_per_address: int = setting(
        1024,
        help="monitor connections not yet authenticated from one IP address",
        metavar="N",
        minimum=1,
    )
    max_event_clients: int = setting(
        100, help="open /api/events streams (more get 503)", metavar="N", minimum=1
    )
    event_write_timeout: float = setting(
        10.0,
        help="seconds an /api/events client may take to accept a write before it is dropped",
        metavar="S",
        above=0,
    )
    http_idle_timeout: float = setting(
        15.0,
        help="seconds an HTTP connection may stay idle or take to send its request headers",
        metavar="S",
        above=0,
    )
    max_open_files: int = setting(
        65536,
        help="open-files limit the central raises its soft limit to (never above the hard one)",
        metavar="N",
        minimum=256,
    )
    create_topics: bool = setting(True, help="create the Kafka topics at start")
    tls_cert: str = setting("", help="certificate (PEM) to serve the monitor port over TLS")
    tls_key: str = setting("", help="private key (PEM) of --tls-cert")

    def __post_init__(self) -> None:
        KafkaOptions.__post_init__(self)  # zero-argument super() fails in slotted dataclasses
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together: give both or neither")

    @property
    def idle_timeout(self) -> float:
        """No status for this long and the CP is DISCONNECTED."""
        return self.missed_heartbeats * self.heartbeat_interval

    def kafka_settings(self) -> KafkaSettings:
        return self.kafka_settings_for("evcentral")
