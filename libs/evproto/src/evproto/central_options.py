"""The settings of a component that links to the central's monitor port as charging
points (the monitor, the OCPP gateway), on top of the common ones.

A service's settings dataclass inherits :class:`CentralLinkOptions` (a
:class:`~evproto.config.ServiceSettings`) to get ``--central``, ``--central-tls``,
``--central-ca-file`` and ``--registration-token``, their validation, the
address and the TLS context.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from evproto.config import ServiceSettings, address, parse_hostport, setting
from evproto.errors import ConfigError

__all__ = ["CentralLinkOptions"]


# Not slotted, as KafkaOptions: a service may combine the two (slotted bases conflict).
@dataclass(frozen=True, kw_only=True)
class CentralLinkOptions(ServiceSettings):
    central: str = address("127.0.0.1:3440", "the central's monitor port")
    central_tls: bool = setting(False, help="TLS to the central (its host name is checked)")
    central_ca_file: str = setting(
        "",
        help="with --central-tls: the CA bundle that signs the central's certificate "
        "(empty: the system's)",
        metavar="FILE",
    )
    registration_token: str = setting(
        "", help="proved to the central to register an unknown CP", secret=True, metavar="TOKEN"
    )

    def __post_init__(self) -> None:
        _ = self.central_address
        if self.central_ca_file and not self.central_tls:
            raise ConfigError("--central-ca-file is set but --central-tls is off")

    @property
    def central_address(self) -> tuple[str, int]:
        return parse_hostport(self.central, what="--central", default_host="127.0.0.1")

    def central_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for the central (host name checked), or None without TLS."""
        if not self.central_tls:
            return None
        try:
            return ssl.create_default_context(cafile=self.central_ca_file or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"--central-ca-file {self.central_ca_file}: cannot load CA certificates: {exc}"
            ) from None
