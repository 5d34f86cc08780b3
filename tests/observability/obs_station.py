"""One OCPP 1.6J station at the observed gateway: tests/e2e's scripted ``ocpp`` library
ChargePoint, heartbeating at the interval its BootNotification was given, as a real
charger does (a silent station is dropped after three missed heartbeats).
"""

from __future__ import annotations

import asyncio
import contextlib

from e2e_ocpp import Station16
from evstack.waiting import wait_until
from ocpp.v16 import call

__all__ = ["ObservedStation"]

_CONNECT_TIMEOUT_S = 30.0


class ObservedStation(Station16):
    def __init__(self, station_id: str, port: int) -> None:
        super().__init__(station_id, port)
        self._beating: asyncio.Task[None] | None = None

    def come_online(self) -> None:
        """Connect, boot (Accepted), report connector 1 Available, heartbeat from then on."""
        wait_until(self._try_connect, _CONNECT_TIMEOUT_S, f"{self.station_id} connects")
        booted = self.boot()
        assert booted.status == "Accepted", booted
        self.status("Available")
        self.run(self._beat_every(float(booted.interval)))

    def _try_connect(self) -> bool:
        try:
            self.connect()
        except OSError:
            return False
        return True

    async def _beat_every(self, interval: float) -> None:
        self._beating = asyncio.ensure_future(self._beat_forever(interval))

    async def _beat_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.cp.call(call.Heartbeat())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self._stop_beating())
        super().close()

    async def _stop_beating(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(BaseException):
                await self._beating
