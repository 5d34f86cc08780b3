"""One simulated OCPP-J 1.6 charging station, speaking raw JSON frames over aiohttp.

It is the load, not what is measured, so it is kept cheap: no schema library,
one WebSocket, one reader task and one ticker task. After its boot (Accepted:
the bench's gateway enrolls stations automatically) and the status of its one
connector, it makes one call a second, alternately ``Heartbeat`` and
``MeterValues`` (the energy register, Wh, with no transaction); while it
charges, every call is the ``MeterValues`` of its transaction. Calls go one at
a time, as OCPP-J requires.

It answers the gateway's calls as a simple charger does: ``RemoteStartTransaction``
is Accepted and followed by ``StartTransaction``; the station charges for
``charge_s`` seconds and ends with ``StopTransaction`` (the driver unplugs);
``RemoteStopTransaction`` ends it sooner. The instant a remote start arrives is
handed to ``on_remote_start`` (the remote-start latency).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

__all__ = ["CallOutcome", "OcppStation", "StationCounters"]

log = logging.getLogger("evbench.ocppstation")

_CALL, _RESULT, _ERROR = 2, 3, 4
_POWER_W = 11_000.0  # an AC wall box
_RTT_KEEP = 2_000_000  # round trips kept for the percentiles (~16 MB at most)


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(slots=True)
class StationCounters:
    """What the whole fleet of stations saw; the load generator reads it per window."""

    connected: int = 0
    connect_failed: dict[str, int] = field(default_factory=dict)
    boot_not_accepted: int = 0
    closed: int = 0  # a WebSocket that ended while the fleet still ran
    calls: dict[str, int] = field(default_factory=dict)  # sent, by action
    answered: int = 0
    late: int = 0  # answered after ``late_s``
    call_errors: dict[str, int] = field(default_factory=dict)  # CallError codes
    timeouts: int = 0  # no answer within the call timeout: lost
    missed_ticks: int = 0  # a second's call not sent: the one before was answered too late
    rtts: list[float] = field(default_factory=list)
    remote_starts: int = 0
    remote_stops: int = 0
    transactions: int = 0
    start_refused: int = 0
    stops: int = 0
    gateway_calls: dict[str, int] = field(default_factory=dict)  # the gateway's, by action

    @property
    def sent(self) -> int:
        return sum(self.calls.values())

    def failed(self, reason: str) -> None:
        self.connect_failed[reason] = self.connect_failed.get(reason, 0) + 1


@dataclass(frozen=True, slots=True)
class CallOutcome:
    payload: dict[str, Any] | None  # the CallResult's, or None
    error: str = ""  # the CallError's code, "timeout" or "closed"


class OcppStation:
    def __init__(
        self,
        station_id: str,
        url: str,
        counters: StationCounters,
        *,
        on_remote_start: Callable[[str, float], None] = lambda _cp, _at: None,
        charge_s: float = 2.0,
        call_timeout: float = 10.0,
        late_s: float = 1.0,
    ) -> None:
        self.station_id = station_id
        self.url = f"{url.rstrip('/')}/{station_id}"
        self.counters = counters
        self.on_remote_start = on_remote_start
        self.charge_s = charge_s
        self.call_timeout = call_timeout
        self.late_s = late_s
        self.energy_wh = 1000.0  # a register never starts at zero
        self.tx_id: int | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[str, asyncio.Future[CallOutcome]] = {}
        self._one_call = asyncio.Lock()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closing = False

    @property
    def cp_id(self) -> str:
        return f"{self.station_id}-1"

    # --- the connection ------------------------------------------------------------

    async def connect(self, session: aiohttp.ClientSession) -> bool:
        """Open the WebSocket, boot and report the connector Available; False if refused."""
        try:
            self._ws = await session.ws_connect(
                self.url,
                protocols=("ocpp1.6",),
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                autoping=True,
                max_msg_size=1 << 16,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.counters.failed(type(exc).__name__)
            return False
        self._spawn(self._read())
        boot = await self.call(
            "BootNotification", {"chargePointVendor": "evbench", "chargePointModel": "sim16"}
        )
        if boot.payload is None or boot.payload.get("status") != "Accepted":
            self.counters.boot_not_accepted += 1
            await self.close()
            return False
        await self._status("Available")
        self.counters.connected += 1
        return True

    def start_ticking(self, first_in: float, interval: float = 1.0) -> None:
        self._spawn(self._tick(first_in, interval))

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()

    def _spawn(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                break
            try:
                frame = json.loads(msg.data)
                kind, unique_id = frame[0], str(frame[1])
            except (ValueError, TypeError, IndexError, KeyError):
                log.warning("bad frame %s: %.80s", self.station_id, msg.data)
                continue
            if kind == _CALL:
                await self._answer(unique_id, str(frame[2]), frame[3])
            elif (waiting := self._waiting.pop(unique_id, None)) is not None:
                if kind == _RESULT:
                    waiting.set_result(CallOutcome(frame[2]))
                else:
                    waiting.set_result(CallOutcome(None, str(frame[2])))
        if not self._closing:
            self.counters.closed += 1
            log.warning("closed by the gateway %s", self.station_id)
        for waiting in self._waiting.values():
            waiting.set_result(CallOutcome(None, "closed"))
        self._waiting.clear()

    # --- our calls -----------------------------------------------------------------

    async def call(self, action: str, payload: dict[str, Any]) -> CallOutcome:
        """One call, after the one in flight; counted and timed."""
        async with self._one_call:
            return await self._call(action, payload)

    async def _call(self, action: str, payload: dict[str, Any]) -> CallOutcome:
        ws = self._ws
        c = self.counters
        if ws is None or ws.closed:
            return CallOutcome(None, "closed")
        unique_id = str(next(self._ids))
        answer = asyncio.get_running_loop().create_future()
        self._waiting[unique_id] = answer
        c.calls[action] = c.calls.get(action, 0) + 1
        sent = time.monotonic()
        try:
            await ws.send_str(json.dumps([_CALL, unique_id, action, payload]))
            outcome: CallOutcome = await asyncio.wait_for(answer, self.call_timeout)
        except TimeoutError:
            self._waiting.pop(unique_id, None)
            c.timeouts += 1
            return CallOutcome(None, "timeout")
        except (ConnectionError, aiohttp.ClientError):
            self._waiting.pop(unique_id, None)
            return CallOutcome(None, "closed")
        rtt = time.monotonic() - sent
        if outcome.error == "closed":
            return outcome
        c.answered += 1
        if rtt > self.late_s:
            c.late += 1
        if len(c.rtts) < _RTT_KEEP:
            c.rtts.append(rtt)
        if outcome.error:
            c.call_errors[outcome.error] = c.call_errors.get(outcome.error, 0) + 1
        return outcome

    async def _tick(self, first_in: float, interval: float) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time() + first_in
        beat = 0
        while True:
            await asyncio.sleep(max(0.0, due - loop.time()))
            if self.tx_id is not None or beat % 2:
                self.energy_wh += _POWER_W * interval / 3600 if self.tx_id is not None else 0.0
                await self.call("MeterValues", self._meter_values())
            else:
                await self.call("Heartbeat", {})
            beat += 1
            due += interval
            while due < loop.time():  # a late answer: catch up without a burst
                due += interval
                self.counters.missed_ticks += 1

    def _meter_values(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "connectorId": 1,
            "meterValue": [{"timestamp": _now_iso(), "sampledValue": [
                {"value": f"{self.energy_wh:.1f}", "measurand": "Energy.Active.Import.Register",
                 "unit": "Wh"},
            ]}],
        }  # fmt: skip
        if self.tx_id is not None:
            payload["transactionId"] = self.tx_id
        return payload

    async def _status(self, status: str) -> None:
        await self.call(
            "StatusNotification",
            {"connectorId": 1, "errorCode": "NoError", "status": status, "timestamp": _now_iso()},
        )

    # --- the gateway's calls -------------------------------------------------------

    async def _answer(self, unique_id: str, action: str, payload: Any) -> None:
        c = self.counters
        c.gateway_calls[action] = c.gateway_calls.get(action, 0) + 1
        result: dict[str, Any] | None = {"status": "Accepted"}
        if action == "RemoteStartTransaction" and isinstance(payload, dict):
            c.remote_starts += 1
            self.on_remote_start(self.cp_id, time.time())
            if self.tx_id is None:
                self._spawn(self._charge(str(payload.get("idTag", ""))))
            else:
                result = {"status": "Rejected"}
        elif action == "RemoteStopTransaction":
            c.remote_stops += 1
            self._spawn(self._stop("Remote"))
        elif action == "TriggerMessage":
            self._spawn(self._status("Charging" if self.tx_id is not None else "Available"))
        elif action != "ChangeAvailability":
            result = None
        assert self._ws is not None
        frame = (
            [_RESULT, unique_id, result]
            if result is not None
            else [_ERROR, unique_id, "NotImplemented", f"{action} is not simulated", {}]
        )
        with contextlib.suppress(ConnectionError, aiohttp.ClientError):
            await self._ws.send_str(json.dumps(frame))

    async def _charge(self, id_tag: str) -> None:
        started = await self.call(
            "StartTransaction",
            {"connectorId": 1, "idTag": id_tag, "meterStart": int(self.energy_wh),
             "timestamp": _now_iso()},
        )  # fmt: skip
        payload = started.payload or {}
        if payload.get("idTagInfo", {}).get("status") != "Accepted":
            self.counters.start_refused += 1
            return
        self.tx_id = int(payload["transactionId"])
        self.counters.transactions += 1
        await self._status("Charging")
        await asyncio.sleep(self.charge_s)
        await self._stop("EVDisconnected")

    async def _stop(self, reason: str) -> None:
        tx_id = self.tx_id
        if tx_id is None:
            return
        self.tx_id = None
        self.counters.stops += 1
        await self.call(
            "StopTransaction",
            {"transactionId": tx_id, "meterStop": int(self.energy_wh), "timestamp": _now_iso(),
             "reason": reason},
        )  # fmt: skip
        await self._status("Available")
