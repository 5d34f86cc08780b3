"""The central's settings: flags, ``EV_…`` variables or a YAML file (docs/interfaces.md)."""

from __future__ import annotations

from dataclasses import dataclass

from evproto.config import address, count, seconds, setting
from evproto.errors import ConfigError
from evproto.kafka import KafkaSettings
from evproto.kafka.options import KafkaOptions
from evproto.messages import MAX_STATUS_INTERVAL, MIN_STATUS_INTERVAL
from evproto.vocabulary import MAX_PRICE_EUR_PER_KWH

__all__ = ["CentralSettings"]


@dataclass(frozen=True, slots=True)
class CentralSettings(KafkaOptions):
    db: str = setting("evcentral.db", help="SQLite database file (WAL)", metavar="PATH")
    listen: str = address("0.0.0.0:3440", "TCP address for monitors")
    http: str = address("0.0.0.0:8080", "dashboard, REST API, /metrics, /healthz, /readyz")
    operator_token: str = setting(
        "",
        help="Bearer token for reads and operator actions (empty: generated into "
        "<db>.operator-token, 0600)",
        secret=True,
    )
    viewer_token: str = setting(
        "",
        help="Bearer token for read-only access to /api/* (empty: generated into "
        "<db>.viewer-token, 0600)",
        secret=True,
    )
    registration_token: str = setting(
        "",
        help="token a monitor proves to register a CP (empty: registration refused)",
        secret=True,
    )
    registration_burst: int = count(
        100, "CP registrations one IP address may make at once (then --registration-rate)"
    )
    registration_rate: float = setting(
        60.0,
        help="CP registrations one IP address may make per minute after its burst",
        metavar="N",
        above=0,
    )
    enrollment_token: str = setting(
        "",
        help="token a driver proves to enroll itself on first use (empty: only the operator "
        "enrolls drivers, POST /api/drivers)",
        secret=True,
    )
    max_power_kw: float = setting(
        350.0,
        help="the most power any CP may report; energy above power x time is refused",
        metavar="KW",
        above=0,
        maximum=1000,
    )
    energy_margin_kwh: float = setting(
        0.01,
        help="kWh a report may exceed power x time since authorization by (rounding, delays)",
        metavar="KWH",
        minimum=0,
        maximum=1000,
    )
    default_price: float = setting(
        0.30,
        help="€/kWh for a newly registered CP that proposes none",
        metavar="EUR",
        minimum=0,
        maximum=MAX_PRICE_EUR_PER_KWH,
    )
    heartbeat_interval: float = setting(
        1.0,
        help="seconds between monitor status reports, told to each monitor at login "
        "(a change is reported at once; 5 suits fleets of 10,000+ CPs)",
        metavar="S",
        minimum=MIN_STATUS_INTERVAL,
        maximum=MAX_STATUS_INTERVAL,
    )
    missed_heartbeats: int = count(3, "missed reports before a CP is DISCONNECTED", maximum=1000)
    start_timeout: float = seconds(
        60.0, "seconds an authorized supply may wait for the plug", maximum=86400
    )
    abort_grace: float = seconds(
        3.0, "seconds to wait for the engine's ticket after a fault before closing the session"
    )
    handshake_timeout: float = seconds(10.0, "seconds a new monitor connection has to authenticate")
    # bounds on what peers may hold (docs/reliability.md); defaults fit 10,000 CPs
    link_error_budget: int = count(
        20, "protocol errors a monitor link may make in --link-error-window before it is closed"
    )
    link_error_window: float = seconds(10.0, "seconds over which --link-error-budget counts")
    max_pending_monitors: int = count(
        4096, "monitor connections not yet authenticated, in all (more are refused and counted)"
    )
    max_pending_per_address: int = count(
        1024, "monitor connections not yet authenticated from one IP address"
    )
    max_event_clients: int = count(100, "open /api/events streams (more get 503)")
    event_write_timeout: float = seconds(
        10.0, "seconds an /api/events client may take to accept a write before it is dropped"
    )
    http_idle_timeout: float = seconds(
        15.0, "seconds an HTTP connection may stay idle or take to send its request headers"
    )
    retention_days: float = setting(
        365.0,
        help="days ended sessions and drivers not seen are kept in the database (0: forever)",
        metavar="DAYS",
        minimum=0,
    )
    max_open_files: int = count(
        65536,
        "open-files limit the central raises its soft limit to (never above the hard one)",
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
