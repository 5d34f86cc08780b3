"""The gateway's settings: exactly the ``evocpp`` flags of docs/interfaces.md."""

from __future__ import annotations

import enum
import ssl
from dataclasses import dataclass
from pathlib import Path

from evproto.central_options import CentralLinkOptions
from evproto.config import address, count, parse_hostport, seconds, setting
from evproto.errors import ConfigError
from evproto.kafka.options import KafkaOptions

from evocpp.store import DB_NAME

__all__ = ["Enrollment", "OcppSettings"]


class Enrollment(enum.StrEnum):
    """What happens to a station the gateway does not know."""

    CLOSED = "closed"  # refused (HTTP 401): the operator adds stations first
    PENDING = "pending"  # admitted as pending; BootNotification Pending until accepted
    AUTO = "auto"  # admitted and accepted at once (local development)


@dataclass(frozen=True, slots=True, kw_only=True)
class OcppSettings(KafkaOptions, CentralLinkOptions):
    listen: str = address("0.0.0.0:9000", "WebSocket endpoint ws(s)://HOST:PORT/ocpp/<stationId>")
    state_dir: str = setting(
        ".evocpp",
        help="keeps the stations, their transactions and the CP secrets (gateway.db, 0600)",
        metavar="DIR",
    )
    enrollment: str = setting(
        "closed",
        help="unknown stations: closed (refused), pending (the operator accepts them) "
        "or auto (accepted at once)",
        metavar="MODE",
        choices=tuple(m.value for m in Enrollment),
    )
    tls_cert: str = setting(
        "", help="serve wss:// (security profile 2) with this certificate (PEM)", metavar="FILE"
    )
    tls_key: str = setting("", help="the certificate's private key (PEM)", metavar="FILE")
    heartbeat_interval: int = count(
        60, "seconds between station heartbeats (sent in BootNotification)", maximum=86400
    )
    status_interval: float = seconds(
        1.0,
        "seconds between each connector's status reports when the central asks for none",
        maximum=60,
    )
    call_timeout: float = seconds(30.0, "seconds a station has to answer a call of the gateway")
    authorize_timeout: float = seconds(
        15.0, "seconds the central has to authorize an idToken presented at a station"
    )
    max_message_bytes: int = count(
        65536,
        "largest WebSocket message accepted from a station, in bytes",
        minimum=1024,
        maximum=16 * 1024 * 1024,
    )

    def __post_init__(self) -> None:
        KafkaOptions.__post_init__(self)  # zero-argument super() fails in slotted dataclasses
        CentralLinkOptions.__post_init__(self)
        _ = self.listen_address, self.enrollment_mode
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("--tls-cert and --tls-key go together")

    @property
    def listen_address(self) -> tuple[str, int]:
        return parse_hostport(self.listen, what="--listen")

    @property
    def enrollment_mode(self) -> Enrollment:
        try:
            return Enrollment(self.enrollment)
        except ValueError:
            modes = ", ".join(m.value for m in Enrollment)
            raise ConfigError(f"--enrollment: {self.enrollment!r} is not one of {modes}") from None

    @property
    def db_path(self) -> Path:
        return Path(self.state_dir) / DB_NAME

    @property
    def scheme(self) -> str:
        return "wss" if self.tls_cert else "ws"

    def server_ssl_context(self) -> ssl.SSLContext | None:
        """TLS for the WebSocket endpoint (security profile 2), or None."""
        if not self.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"--tls-cert/--tls-key: cannot load: {exc}") from None
        return context
