"""How long the central takes to show a killed CP as DISCONNECTED on its dashboard.

Two CPs are killed at once, each in one way: one link is reset (a killed pod:
the kernel closes the connection, the central sees it at once) and one goes
silent with its connection open (a hung monitor or a cut cable: only the
missed heartbeats tell, after ``missed × interval``). The time runs from the
kill to the ``event: cp`` with DISCONNECTED on ``/api/events``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from evproto.states import CpState

from evbench.link import MonitorLink
from evbench.sse import DashboardWatcher

__all__ = ["MISSED_HEARTBEATS", "KillDetection", "detect_killed"]

MISSED_HEARTBEATS = 3  # the central's default --missed-heartbeats
_SLACK_S = 10.0  # beyond the bound, before a kill counts as not detected


class KillDetection:
    """Per kind of kill: seconds until DISCONNECTED was shown (None: not within the wait)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.seconds: dict[str, float | None] = {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval,
            "bound_s": MISSED_HEARTBEATS * self.interval,
            "dropped_s": self.seconds.get("dropped"),
            "silent_s": self.seconds.get("silent"),
        }


async def detect_killed(
    watcher: DashboardWatcher, dropped: MonitorLink, silent: MonitorLink, interval: float
) -> KillDetection:
    """Kill ``dropped`` (reset) and ``silent`` (no more heartbeats) and time both."""
    found = KillDetection(interval)
    wait = MISSED_HEARTBEATS * interval + _SLACK_S
    loop = asyncio.get_running_loop()

    async def timed(kind: str, link: MonitorLink) -> None:
        seen = watcher.expect(link.cp_id, CpState.DISCONNECTED)
        started = loop.time()
        if kind == "dropped":
            link.drop()
        else:
            link.silent = True
        try:
            found.seconds[kind] = await asyncio.wait_for(seen, wait) - started
        except TimeoutError:
            found.seconds[kind] = None
        finally:
            watcher.forget(link.cp_id)

    await asyncio.gather(timed("dropped", dropped), timed("silent", silent))
    return found
