"""What both OCPP versions' endpoints share, written once.

:mod:`evocpp.v16` and :mod:`evocpp.v201` only map their version's messages:
each is a :class:`StationEndpoint` placed before the library's ``ChargePoint``,
which builds the :class:`~evocpp.station.Station` behind it, reduces a reported
connector status the same way, opens the connectors' links after an accepted
boot, and reads a command's answer the same way.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from ocpp.routing import after

from evocpp.connector import ConnectorStatus
from evocpp.rpc import WIRE_LOG, Endpoint, StationSocket
from evocpp.station import Station, StationCommands, StationServices

__all__ = ["StationEndpoint", "now_iso", "reduced_status"]

# The status values both versions spell alike; every other one means in use.
_STATUS = {
    "Available": ConnectorStatus.AVAILABLE,
    "Faulted": ConnectorStatus.FAULTED,
    "Unavailable": ConnectorStatus.UNAVAILABLE,
}
_ACCEPTED = ("Accepted",)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def reduced_status(reported: str) -> ConnectorStatus:
    """A connector's (1.6) or EVSE's (2.0.1) status as the central needs it."""
    return _STATUS.get(reported, ConnectorStatus.OCCUPIED)


class StationEndpoint(Endpoint):
    """Mixin placed before ``ocpp.v16.ChargePoint`` / ``ocpp.v201.ChargePoint``."""

    actions: ClassVar[frozenset[str]]  # the version's actions: the only label values

    def __init__(self, station_id: str, socket: StationSocket, services: StationServices) -> None:
        # The next class in the MRO is the library's ChargePoint.
        super().__init__(  # type: ignore[call-arg]
            station_id,
            socket,
            response_timeout=services.settings.call_timeout,
            logger=WIRE_LOG,
        )
        # Each version's class implements StationCommands (remote start/stop, …).
        commands = cast(StationCommands, self)
        self.station = Station(station_id, self.version, services, commands)
        self.setup_endpoint(services.metrics, lambda: self.station.accepted, self.actions)

    @after("BootNotification")  # spelt alike in both versions
    def after_boot(self, **_: Any) -> None:
        self.station.after_boot()

    async def command(self, payload: Any, accepted: tuple[str, ...] = _ACCEPTED) -> bool:
        """Our call to the station; True when it answered with an accepting status."""
        result = await self.request(payload)
        return result is not None and result.status in accepted
