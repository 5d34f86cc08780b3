"""The monitor's settings: exactly the ``evmonitor`` flags of docs/interfaces.md."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from evproto.central_options import CentralLinkOptions
from evproto.config import address, identifier, parse_hostport, seconds, setting
from evproto.errors import ConfigError

__all__ = ["MonitorSettings"]


@dataclass(frozen=True, slots=True)
class MonitorSettings(CentralLinkOptions):
    cp_id: str = identifier("", "the CP id this monitor watches (required)")
    engine: str = address("127.0.0.1:5500", "its engine")
    state_dir: str = setting(
        ".evmonitor",
        help="keeps the CP secret issued at registration (<cp-id>.secret)",
        metavar="DIR",
    )
    health_interval: float = seconds(
        1.0,
        "seconds between engine health checks (and central status reports when the "
        "central asks for none)",
    )
    health_timeout: float = seconds(1.0, "an engine answer later than this is a fault")
    central_server_name: str = setting(
        "",
        help="name the central's certificate must carry (empty: the host of --central)",
        metavar="NAME",
    )
    retry_cap: float = seconds(10.0, "seconds, maximum back-off between reconnects")

    def __post_init__(self) -> None:
        CentralLinkOptions.__post_init__(self)  # zero-argument super() fails in slotted classes
        if not self.cp_id:
            raise ConfigError("--cp-id is required (e.g. --cp-id CP-0 or EV_CP_ID=CP-0)")
        _ = self.engine_address
        if self.central_server_name and not self.central_tls:
            raise ConfigError("--central-server-name is set but --central-tls is off")

    # --- derived values ------------------------------------------------------------

    @property
    def engine_address(self) -> tuple[str, int]:
        return parse_hostport(self.engine, what="--engine", default_host="127.0.0.1")

    @property
    def secret_path(self) -> Path:
        return Path(self.state_dir) / f"{self.cp_id}.secret"

    @property
    def central_timeout(self) -> float:
        """Bound on every central handshake step and frame ACK.

        A few heartbeats: long enough for a busy central, short enough that a
        silent one is given up on before it would declare this CP disconnected.
        """
        return min(10.0, max(1.0, 3 * self.health_interval))
