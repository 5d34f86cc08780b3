"""OCPP 2.0.1: the core functional blocks, as the CSMS side.

Provisioning (BootNotification, Heartbeat, StatusNotification, NotifyReport,
NotifyEvent), availability (ChangeAvailability), authorization (Authorize),
transactions (TransactionEvent), meter values (MeterValues, and those inside
TransactionEvent) and remote start/stop (RequestStart/StopTransaction). An EVSE
is a CP: ``<stationId>-<evseId>``.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint, call, call_result
from ocpp.v201.enums import (
    Action,
    MessageTriggerEnumType,
    OperationalStatusEnumType,
    RegistrationStatusEnumType,
)

from evocpp.connector import ConnectorStatus
from evocpp.meter import read_meter_values
from evocpp.metrics import Version
from evocpp.rpc import StationSocket
from evocpp.station import StationServices, StopReason
from evocpp.station_endpoint import StationEndpoint, now_iso, reduced_status

__all__ = ["StationV201"]

log = logging.getLogger("evocpp.v201")

_MAX_UNBOUND = 16  # transactions started before their idToken, per station


def _token_info(accepted: bool) -> dict[str, str]:
    return {"status": "Accepted" if accepted else "Invalid"}


class StationV201(StationEndpoint, ChargePoint):  # type: ignore[misc]
    version = Version.V201
    actions = frozenset(a.value for a in Action)

    def __init__(self, station_id: str, socket: StationSocket, services: StationServices) -> None:
        super().__init__(station_id, socket, services)
        self._unbound: dict[str, tuple[int, float]] = {}  # started before an idToken: evse, Wh

    # --- provisioning --------------------------------------------------------------

    @on(Action.boot_notification)
    def on_boot(self, charging_station: dict[str, Any], **_: Any) -> Any:
        answer = self.station.boot(
            str(charging_station.get("vendor_name", "")), str(charging_station.get("model", ""))
        )
        status = (
            RegistrationStatusEnumType.accepted
            if answer.accepted
            else RegistrationStatusEnumType.pending
        )
        return call_result.BootNotification(
            current_time=now_iso(), interval=answer.interval, status=status
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    def on_status(self, evse_id: int, connector_status: str, **_: Any) -> Any:
        reduced = reduced_status(connector_status)
        self.station.status(
            evse_id, reduced, "Faulted" if reduced is ConnectorStatus.FAULTED else ""
        )
        return call_result.StatusNotification()

    @on(Action.notify_report)
    def on_notify_report(self, **_: Any) -> Any:
        return call_result.NotifyReport()

    @on(Action.notify_event)
    def on_notify_event(self, **_: Any) -> Any:
        return call_result.NotifyEvent()

    # --- authorization, transactions, meter values ----------------------------------

    @on(Action.authorize)
    async def on_authorize(self, id_token: dict[str, Any], **_: Any) -> Any:
        ok = await self.station.authorize_tag(str(id_token["id_token"]))
        return call_result.Authorize(id_token_info=_token_info(ok))

    @on(Action.transaction_event)
    async def on_transaction_event(
        self, event_type: str, transaction_info: dict[str, Any], **kwargs: Any
    ) -> Any:
        tx_id = str(transaction_info["transaction_id"])
        reading = read_meter_values(kwargs.get("meter_value"))
        id_token = kwargs.get("id_token")
        tag = str(id_token["id_token"]) if id_token else None
        evse = (kwargs.get("evse") or {}).get("id")
        accepted: bool | None = None
        known = self.station.transaction_of(tx_id)
        if known is None and event_type != "Ended":
            accepted = await self._bind(tx_id, evse, tag, reading.energy_wh, transaction_info)
        elif known is not None:
            self.station.meter(tx_id, reading)
        if event_type == "Ended":
            stopped = str(transaction_info.get("stopped_reason") or "Local")
            self.station.stop_transaction(tx_id, reading.energy_wh, StopReason(stopped))
            self._unbound.pop(tx_id, None)
        if tag is None:
            return call_result.TransactionEvent()
        if accepted is None:
            accepted = known is not None
        return call_result.TransactionEvent(id_token_info=_token_info(accepted))

    async def _bind(
        self,
        tx_id: str,
        evse: int | None,
        tag: str | None,
        energy_wh: float | None,
        transaction_info: dict[str, Any],
    ) -> bool:
        """A transaction the gateway has not bound to a session yet."""
        number, start_wh = self._unbound.get(tx_id, (evse or 1, energy_wh or 0.0))
        number = evse or number
        remote_id = transaction_info.get("remote_start_id")
        if tag is None and remote_id is not None:
            tag = self.station.tag_of_remote_start(number, int(remote_id))
        if tag is None:
            if len(self._unbound) < _MAX_UNBOUND:  # the idToken comes in a later event
                self._unbound[tx_id] = (number, start_wh)
            return False
        answer = await self.station.start_transaction(number, tag, start_wh, tx_id)
        self._unbound.pop(tx_id, None)
        return answer.accepted

    @on(Action.meter_values)
    def on_meter_values(self, **_: Any) -> Any:
        return call_result.MeterValues()  # outside a transaction: nothing to bill

    # --- commands (evocpp.station.StationCommands) -----------------------------------

    async def remote_start(self, connector: int, id_tag: str, remote_start_id: int) -> bool:
        return await self.command(
            call.RequestStartTransaction(
                id_token={"id_token": id_tag, "type": "Central"},
                remote_start_id=remote_start_id,
                evse_id=connector,
            )
        )

    async def remote_stop(self, tx_id: str) -> bool:
        return await self.command(call.RequestStopTransaction(transaction_id=tx_id))

    async def change_availability(self, connector: int, operative: bool) -> bool:
        status = (
            OperationalStatusEnumType.operative
            if operative
            else OperationalStatusEnumType.inoperative
        )
        request = call.ChangeAvailability(operational_status=status, evse={"id": connector})
        return await self.command(request, accepted=("Accepted", "Scheduled"))

    async def trigger_status(self) -> bool:
        return await self.command(
            call.TriggerMessage(requested_message=MessageTriggerEnumType.status_notification)
        )
