"""OCPP 1.6J: Core profile and Remote Trigger, as the central system side.

Each ``@on`` handler turns a station's call into a :class:`~evocpp.station.Station`
call and answers; the commands the gateway sends are :class:`StationCommands`.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    AvailabilityType,
    DataTransferStatus,
    MessageTrigger,
    RegistrationStatus,
)

from evocpp.meter import read_meter_values
from evocpp.metrics import Version
from evocpp.station import StopReason
from evocpp.station_endpoint import StationEndpoint, now_iso, reduced_status

__all__ = ["StationV16"]

log = logging.getLogger("evocpp.v16")

_ACCEPTED = IdTagInfo(status=AuthorizationStatus.accepted)
_INVALID = IdTagInfo(status=AuthorizationStatus.invalid)


class StationV16(StationEndpoint, ChargePoint):  # type: ignore[misc]
    version = Version.V16
    actions = frozenset(a.value for a in Action)

    # --- provisioning --------------------------------------------------------------

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        answer = self.station.boot(charge_point_vendor, charge_point_model)
        status = RegistrationStatus.accepted if answer.accepted else RegistrationStatus.pending
        return call_result.BootNotification(
            current_time=now_iso(), interval=answer.interval, status=status
        )

    @on(Action.heartbeat)
    def on_heartbeat(self, **_: Any) -> Any:
        return call_result.Heartbeat(current_time=now_iso())

    @on(Action.status_notification)
    def on_status(self, connector_id: int, status: str, error_code: str, **_: Any) -> Any:
        reduced = reduced_status(status)
        fault = error_code if error_code != "NoError" else ""
        self.station.status(connector_id, reduced, fault)
        return call_result.StatusNotification()

    # --- authorization and transactions ----------------------------------------------

    @on(Action.authorize)
    async def on_authorize(self, id_tag: str, **_: Any) -> Any:
        ok = await self.station.authorize_tag(id_tag)
        return call_result.Authorize(id_tag_info=_ACCEPTED if ok else _INVALID)

    @on(Action.start_transaction)
    async def on_start_transaction(
        self, connector_id: int, id_tag: str, meter_start: int, timestamp: str, **_: Any
    ) -> Any:
        answer = await self.station.start_transaction(
            connector_id,
            id_tag,
            float(meter_start),
            replay_key=f"{connector_id}|{id_tag}|{meter_start}|{timestamp}",
        )
        return call_result.StartTransaction(
            transaction_id=int(answer.tx_id), id_tag_info=_ACCEPTED if answer.accepted else _INVALID
        )

    @on(Action.meter_values)
    def on_meter_values(
        self, connector_id: int, meter_value: list[dict[str, Any]], **kwargs: Any
    ) -> Any:
        tx_id = kwargs.get("transaction_id")
        if tx_id is not None:
            self.station.meter(str(tx_id), read_meter_values(meter_value))
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop_transaction(self, meter_stop: int, transaction_id: int, **kwargs: Any) -> Any:
        self.station.meter(str(transaction_id), read_meter_values(kwargs.get("transaction_data")))
        reason = StopReason(kwargs.get("reason") or "Local")
        self.station.stop_transaction(str(transaction_id), float(meter_stop), reason)
        return call_result.StopTransaction(id_tag_info=_ACCEPTED if kwargs.get("id_tag") else None)

    # --- the rest of Core: answered, nothing to do ---------------------------------

    @on(Action.data_transfer)
    def on_data_transfer(self, **_: Any) -> Any:
        return call_result.DataTransfer(status=DataTransferStatus.unknown_vendor_id)

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, **_: Any) -> Any:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, **_: Any) -> Any:
        return call_result.FirmwareStatusNotification()

    # --- commands (evocpp.station.StationCommands) -----------------------------------

    async def remote_start(self, connector: int, id_tag: str, remote_start_id: int) -> bool:
        return await self.command(
            call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector)
        )

    async def remote_stop(self, tx_id: str) -> bool:
        return await self.command(call.RemoteStopTransaction(transaction_id=int(tx_id)))

    async def change_availability(self, connector: int, operative: bool) -> bool:
        kind = AvailabilityType.operative if operative else AvailabilityType.inoperative
        request = call.ChangeAvailability(connector_id=connector, type=kind)
        return await self.command(request, accepted=("Accepted", "Scheduled"))

    async def trigger_status(self) -> bool:
        return await self.command(
            call.TriggerMessage(requested_message=MessageTrigger.status_notification)
        )
