"""What the monitor reports about its engine, and who is waiting for it to change."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from evproto.logs import kv
from evproto.states import Health

__all__ = ["HealthBoard", "Report"]

log = logging.getLogger("evmonitor.health")
_REASON_MAX = 256  # Status.reason's limit: a longer one would be refused by the central


@dataclass(frozen=True, slots=True)
class Report:
    health: Health
    reason: str = ""

    def __post_init__(self) -> None:
        if len(self.reason) > _REASON_MAX:
            object.__setattr__(self, "reason", self.reason[: _REASON_MAX - 1] + "…")


class HealthBoard:
    """The current report on the engine; logs each change once and wakes the waiters."""

    def __init__(self, cp_id: str) -> None:
        self._cp_id = cp_id
        self.current: Report | None = None
        self.version = 0
        self._changed = asyncio.Event()

    def publish(self, report: Report) -> None:
        if report == self.current:
            return
        self.current = report
        self.version += 1
        level = logging.INFO if report.health is Health.OK else logging.WARNING
        log.log(
            level,
            "engine health %s",
            kv(
                cp=self._cp_id,
                peer="engine",
                health=report.health.value,
                reason=report.reason or None,
            ),
        )
        self._changed.set()
        self._changed = asyncio.Event()

    def mark_unreachable(self, reason: str) -> None:
        """UNREACHABLE, unless already so: a dead engine is one change, not one per retry."""
        if self.current is None or self.current.health is not Health.UNREACHABLE:
            self.publish(Report(Health.UNREACHABLE, reason))

    async def wait_for_change(self, seen_version: int, timeout: float | None = None) -> bool:
        """True once the version differs from ``seen_version``; False after ``timeout``."""
        if self.version != seen_version:
            return True
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def first_report(self) -> Report:
        while self.current is None:
            await self.wait_for_change(self.version)
        return self.current
