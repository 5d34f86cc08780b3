"""OCPP stations nobody here wrote, scripted: the ``ocpp`` library's own ChargePoint
classes (1.6 and 2.0.1) as the station side, and the gateway as a process.

A :class:`ScriptedStation` runs on its own event loop in a thread, so the
synchronous system tests drive it with plain calls (each bounded by a timeout).
It behaves like a simple charger: it accepts remote starts, starts the
transaction, reports the energy register (Wh) every ``meter_interval`` while
charging, stops on a remote stop, and can fault, unplug, go offline and queue
its StopTransaction until it is back.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from e2e_system import System
from evproto.secret_file import SecretFile
from evstack.localstack import LocalStack, ManagedProcess
from evstack.waiting import wait_until
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

T = TypeVar("T")
HOST = "127.0.0.1"
POWER_W = 36_000.0  # a fast charger: 10 Wh a second


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def gateway_process(stack: LocalStack) -> ManagedProcess:
    """``evocpp`` as ``make run`` starts it (enrollment auto), with test-sized timeouts."""
    return stack.gateway_process("--heartbeat-interval", "10", "--call-timeout", "10")


def start_gateway(stack: LocalStack) -> ManagedProcess:
    """The gateway, started; returns once it listens."""
    gateway = gateway_process(stack).start()
    wait_until(lambda: "gateway ready" in gateway.log_text(), 30, "the OCPP gateway listens")
    return gateway


def card_holder(system: System, driver_id: str, id_token: str) -> None:
    """An enrolled driver (its secret where the harness opens what is sealed for it,
    as the driver app would keep it) with an RFID card attached to the account."""
    enrolled = system.api.request("POST", "/api/drivers", {"driver_id": driver_id})
    assert enrolled.status == 201, enrolled
    secret = SecretFile(system.workdir / "drivers" / f"{driver_id}.secret", what="", remedy="")
    secret.save(enrolled.body["secret"])
    attached = system.api.request(
        "POST", f"/api/drivers/{driver_id}/tokens", {"id_token": id_token}
    )
    assert attached.status == 201, attached


class _Socket:
    """aiohttp's client WebSocket as the ``ocpp`` library's connection."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def recv(self) -> str:
        msg = await self.ws.receive()
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"websocket {msg.type.name.lower()}")
        return str(msg.data)

    async def send(self, message: str) -> None:
        await self.ws.send_str(message)


class _Charger:
    """What both versions' stations share: the meter, the session, the thread's loop."""

    def __init__(self, station_id: str, protocol: str, port: int) -> None:
        self.station_id = station_id
        self.protocol = protocol
        self.url = f"ws://{HOST}:{port}/ocpp/{station_id}"
        self.energy_wh = 1000.0  # the register never starts at zero
        self.tx_id: str | None = None
        self.offline_queue: list[Any] = []
        self.remote_starts: list[str] = []
        self.meter_interval = 0.5
        self._metering: asyncio.Task[None] | None = None
        self._later: set[asyncio.Future[object]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._session: aiohttp.ClientSession | None = None
        self._reader: asyncio.Future[Any] | None = None
        self.cp: Any = None

    def later(self, work: Coroutine[Any, Any, object]) -> None:
        """What a handler does after answering (the station's next calls)."""
        task = asyncio.ensure_future(work)
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    def run(self, work: Coroutine[Any, Any, T], timeout: float = 20.0) -> T:
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    # --- the connection -------------------------------------------------------------

    def connect(self, password: str | None = None) -> None:
        self.run(self._connect(password))

    async def _connect(self, password: str | None) -> None:
        headers = {}
        if password is not None:
            token = base64.b64encode(f"{self.station_id}:{password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        self._session = aiohttp.ClientSession()
        ws = await self._session.ws_connect(self.url, protocols=(self.protocol,), headers=headers)
        assert ws.protocol == self.protocol
        self.cp = self._make(_Socket(ws))
        self._reader = asyncio.ensure_future(self.cp.start())

    def _make(self, socket: _Socket) -> Any:
        raise NotImplementedError

    def disconnect(self) -> None:
        self.run(self._disconnect())

    async def _disconnect(self) -> None:
        self._stop_metering()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(BaseException):
                await self._reader
        if self._session is not None:
            await self._session.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.disconnect()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    # --- charging -------------------------------------------------------------------

    def charge(self) -> None:
        """Meter values from now on, for the transaction in ``tx_id``."""
        self._loop.call_soon_threadsafe(self._start_metering)

    def _start_metering(self) -> None:
        self._stop_metering()
        self._metering = asyncio.ensure_future(self._meter_forever())

    def _stop_metering(self) -> None:
        if self._metering is not None:
            self._metering.cancel()
            self._metering = None

    async def _meter_forever(self) -> None:
        while self.tx_id is not None:
            await asyncio.sleep(self.meter_interval)
            self.energy_wh += POWER_W * self.meter_interval / 3600
            await self.send_meter()

    async def send_meter(self) -> None:
        raise NotImplementedError


class Station16(_Charger):
    """An OCPP 1.6J charge point: ``ocpp.v16.ChargePoint`` with Core handlers."""

    def __init__(self, station_id: str, port: int) -> None:
        super().__init__(station_id, "ocpp1.6", port)

    def _make(self, socket: _Socket) -> Any:
        charger = self

        class Cp(ChargePoint16):  # type: ignore[misc]
            @on("RemoteStartTransaction")
            def remote_start(self, id_tag: str, connector_id: int = 1, **_: Any) -> Any:
                charger.remote_starts.append(id_tag)
                charger.later(charger._start(id_tag, connector_id))
                return result16.RemoteStartTransaction(status="Accepted")

            @on("RemoteStopTransaction")
            def remote_stop(self, transaction_id: int, **_: Any) -> Any:
                if str(transaction_id) != charger.tx_id:
                    return result16.RemoteStopTransaction(status="Rejected")
                charger.later(charger._stop("Remote"))
                return result16.RemoteStopTransaction(status="Accepted")

            @on("ChangeAvailability")
            def change_availability(self, connector_id: int, type: str, **_: Any) -> Any:
                status = "Available" if type == "Operative" else "Unavailable"
                charger.later(charger._status(connector_id, status))
                return result16.ChangeAvailability(status="Accepted")

            @on("TriggerMessage")
            def trigger(self, requested_message: str, **_: Any) -> Any:
                charger.later(charger._status(1, "Available"))
                return result16.TriggerMessage(status="Accepted")

        return Cp(self.station_id, socket, response_timeout=10)

    def boot(self) -> Any:
        return self.run(
            self.cp.call(
                call16.BootNotification(charge_point_vendor="Acme", charge_point_model="W16")
            )
        )

    def heartbeat(self) -> Any:
        return self.run(self.cp.call(call16.Heartbeat()))

    def status(self, status: str, error_code: str = "NoError", connector: int = 1) -> None:
        self.run(self._status(connector, status, error_code))

    async def _status(self, connector: int, status: str, error_code: str = "NoError") -> None:
        await self.cp.call(
            call16.StatusNotification(
                connector_id=connector, error_code=error_code, status=status, timestamp=now()
            )
        )

    def authorize(self, id_tag: str) -> str:
        result = self.run(self.cp.call(call16.Authorize(id_tag=id_tag)))
        return str(result.id_tag_info["status"])

    def start_local(self, id_tag: str) -> str:
        """A driver's card at the station, then the plug: the idTag's status."""
        return self.run(self._start(id_tag, 1))

    async def _start(self, id_tag: str, connector: int) -> str:
        await self._status(connector, "Preparing")
        result = await self.cp.call(
            call16.StartTransaction(
                connector_id=connector, id_tag=id_tag, meter_start=int(self.energy_wh),
                timestamp=now(),
            )
        )  # fmt: skip
        status = str(result.id_tag_info["status"])
        if status == "Accepted":
            self.tx_id = str(result.transaction_id)
            await self._status(connector, "Charging")
            self._start_metering()
        return status

    async def send_meter(self) -> None:
        if self.tx_id is None:
            return
        await self.cp.call(
            call16.MeterValues(
                connector_id=1,
                transaction_id=int(self.tx_id),
                meter_value=[{"timestamp": now(), "sampledValue": [
                    {"value": f"{self.energy_wh:.1f}", "measurand": "Energy.Active.Import.Register",
                     "unit": "Wh"},
                    {"value": f"{POWER_W:.0f}", "measurand": "Power.Active.Import", "unit": "W"},
                ]}],
            )
        )  # fmt: skip

    def stop(self, reason: str = "Local") -> None:
        self.run(self._stop(reason))

    async def _stop(self, reason: str) -> None:
        self._stop_metering()
        if self.tx_id is None:
            return
        stop = call16.StopTransaction(
            meter_stop=int(self.energy_wh), timestamp=now(), transaction_id=int(self.tx_id),
            reason=reason,
        )  # fmt: skip
        self.tx_id = None
        await self.cp.call(stop)
        await self._status(1, "Finishing")
        await self._status(1, "Available")

    def stop_offline(self, reason: str = "EVDisconnected") -> None:
        """The vehicle leaves while the station is offline: StopTransaction is queued."""
        self.offline_queue.append(
            call16.StopTransaction(
                meter_stop=int(self.energy_wh), timestamp=now(),
                transaction_id=int(self.tx_id or 0), reason=reason,
            )
        )  # fmt: skip
        self.tx_id = None

    def send_queued(self) -> list[Any]:
        return [self.run(self.cp.call(msg)) for msg in self.offline_queue]


class Station201(_Charger):
    """An OCPP 2.0.1 charging station: ``ocpp.v201.ChargePoint``, one EVSE."""

    def __init__(self, station_id: str, port: int) -> None:
        super().__init__(station_id, "ocpp2.0.1", port)
        self._seq = 0
        self._tx_count = 0

    def _make(self, socket: _Socket) -> Any:
        charger = self

        class Cp(ChargePoint201):  # type: ignore[misc]
            @on("RequestStartTransaction")
            def request_start(
                self, id_token: dict[str, Any], remote_start_id: int, **kw: Any
            ) -> Any:
                charger.remote_starts.append(id_token["id_token"])
                charger.later(
                    charger._start(id_token["id_token"], kw.get("evse_id") or 1, remote_start_id)
                )
                return result201.RequestStartTransaction(status="Accepted")

            @on("RequestStopTransaction")
            def request_stop(self, transaction_id: str, **_: Any) -> Any:
                if transaction_id != charger.tx_id:
                    return result201.RequestStopTransaction(status="Rejected")
                charger.later(charger._stop("Remote"))
                return result201.RequestStopTransaction(status="Accepted")

            @on("ChangeAvailability")
            def change_availability(self, operational_status: str, **_: Any) -> Any:
                status = "Available" if operational_status == "Operative" else "Unavailable"
                charger.later(charger._status(1, status))
                return result201.ChangeAvailability(status="Accepted")

            @on("TriggerMessage")
            def trigger(self, requested_message: str, **_: Any) -> Any:
                charger.later(charger._status(1, "Available"))
                return result201.TriggerMessage(status="Accepted")

        return Cp(self.station_id, socket, response_timeout=10)

    def boot(self) -> Any:
        return self.run(
            self.cp.call(
                call201.BootNotification(
                    charging_station={"vendor_name": "Acme", "model": "W201"}, reason="PowerUp"
                )
            )
        )

    def heartbeat(self) -> Any:
        return self.run(self.cp.call(call201.Heartbeat()))

    def status(self, status: str, evse: int = 1) -> None:
        self.run(self._status(evse, status))

    async def _status(self, evse: int, status: str) -> None:
        await self.cp.call(
            call201.StatusNotification(
                timestamp=now(), connector_status=status, evse_id=evse, connector_id=1
            )
        )

    def authorize(self, id_token: str) -> str:
        result = self.run(
            self.cp.call(call201.Authorize(id_token={"id_token": id_token, "type": "ISO14443"}))
        )
        return str(result.id_token_info["status"])

    def start_local(self, id_token: str) -> str:
        return self.run(self._start(id_token, 1, None))

    def _event(self, event_type: str, trigger: str, **extra: Any) -> Any:
        self._seq += 1
        return call201.TransactionEvent(
            event_type=event_type, timestamp=now(), trigger_reason=trigger, seq_no=self._seq,
            **extra,
        )  # fmt: skip

    def _meter_value(self) -> list[dict[str, Any]]:
        return [{"timestamp": now(), "sampled_value": [
            {"value": round(self.energy_wh, 1), "measurand": "Energy.Active.Import.Register",
             "unit_of_measure": {"unit": "Wh"}},
        ]}]  # fmt: skip

    async def _start(self, id_token: str, evse: int, remote_start_id: int | None) -> str:
        self._tx_count += 1
        tx_id = f"{self.station_id}-tx{self._tx_count}"
        await self._status(evse, "Occupied")
        info: dict[str, Any] = {"transaction_id": tx_id, "charging_state": "Charging"}
        if remote_start_id is not None:
            info["remote_start_id"] = remote_start_id
        result = await self.cp.call(
            self._event(
                "Started", "RemoteStart" if remote_start_id is not None else "Authorized",
                transaction_info=info, id_token={"id_token": id_token, "type": "ISO14443"},
                evse={"id": evse, "connector_id": 1}, meter_value=self._meter_value(),
            )
        )  # fmt: skip
        status = str((result.id_token_info or {}).get("status", "Accepted"))
        if status == "Accepted":
            self.tx_id = tx_id
            self._start_metering()
        return status

    async def send_meter(self) -> None:
        if self.tx_id is None:
            return
        await self.cp.call(
            self._event(
                "Updated", "MeterValuePeriodic",
                transaction_info={"transaction_id": self.tx_id, "charging_state": "Charging"},
                meter_value=self._meter_value(),
            )
        )  # fmt: skip

    def _ended(self, reason: str) -> Any:
        return self._event(
            "Ended", "RemoteStop" if reason == "Remote" else "EVDeparted",
            transaction_info={"transaction_id": self.tx_id, "stopped_reason": reason},
            meter_value=self._meter_value(), offline=False,
        )  # fmt: skip

    def stop(self, reason: str = "Local") -> None:
        self.run(self._stop(reason))

    async def _stop(self, reason: str) -> None:
        self._stop_metering()
        if self.tx_id is None:
            return
        ended = self._ended(reason)
        self.tx_id = None
        await self.cp.call(ended)
        await self._status(1, "Available")

    def stop_offline(self, reason: str = "EVDisconnected") -> None:
        ended = self._ended(reason)
        ended.offline = True
        self.offline_queue.append(ended)
        self.tx_id = None

    def send_queued(self) -> list[Any]:
        return [self.run(self.cp.call(msg)) for msg in self.offline_queue]


def station(version: str, station_id: str, port: int) -> Station16 | Station201:
    return Station16(station_id, port) if version == "1.6" else Station201(station_id, port)


def state_dir(stack: LocalStack) -> Path:
    return stack.workdir / "ocpp"
