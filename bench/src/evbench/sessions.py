"""Supply requests at a steady rate, each from an idle driver to a free CP.

A driver is busy from its request until its answer (denied) or its ticket; a
CP goes back to the pool a moment after its ticket, so the central has
certainly made it ACTIVE again before it is asked for once more.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

__all__ = ["RequestScheduler"]

_TICK = 0.05


class RequestScheduler:
    def __init__(
        self,
        request: Callable[[str, str], None],
        driver_ids: list[str],
        cp_ids: list[str],
        *,
        rate: float,
        cooldown: float = 1.0,
    ) -> None:
        self._request = request
        self._idle_drivers: deque[str] = deque(driver_ids)
        self._free_cps: deque[str] = deque(cp_ids)
        self.drivers = len(driver_ids)
        self.rate = rate
        self.cooldown = cooldown
        self.sent = 0
        self.skipped = 0  # a request was due but no driver was idle or no CP free
        self.busy_samples: list[int] = []  # drivers in a session, sampled every second
        self._task: asyncio.Task[None] | None = None

    @property
    def busy(self) -> int:
        return self.drivers - len(self._idle_drivers)

    def offer_cps(self, cp_ids: list[str]) -> None:
        """CPs that may be requested from now on (connected and authenticated)."""
        self._free_cps.extend(cp_ids)

    def release(self, driver_id: str, cp_id: str) -> None:
        self._idle_drivers.append(driver_id)
        asyncio.get_running_loop().call_later(self.cooldown, self._free_cps.append, cp_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="requests")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        credit = 0.0
        last = loop.time()
        next_sample = last + 1.0
        while True:
            await asyncio.sleep(_TICK)
            now = loop.time()
            credit += (now - last) * self.rate
            last = now
            while credit >= 1:
                credit -= 1
                if self._idle_drivers and self._free_cps:
                    self._request(self._idle_drivers.popleft(), self._free_cps.popleft())
                    self.sent += 1
                else:
                    self.skipped += 1
            if now >= next_sample:
                self.busy_samples.append(self.busy)
                next_sample += 1.0

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
