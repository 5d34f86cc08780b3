"""Monitors under test: in this process beside the fakes (:class:`Rig`), or as processes.

Imported by name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from evmonitor import Monitor, MonitorSettings
from evproto.states import Health
from evstack.waiting import eventually
from monitor_fakes import CP_ID, TOKEN, FakeCentral, FakeEngine


@dataclass
class RunningMonitor:
    monitor: Monitor
    stop: asyncio.Event
    task: asyncio.Task[None]

    def metric(self, name: str, **labels: str) -> float:
        value = self.monitor.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


@dataclass
class Rig:
    """A fake engine, a fake central, a state dir, and monitors run in this process."""

    engine: FakeEngine
    central: FakeCentral
    state_dir: Path
    running: list[RunningMonitor] = field(default_factory=list)

    eventually = staticmethod(eventually)

    @property
    def secret_file(self) -> Path:
        return self.state_dir / f"{CP_ID}.secret"

    def settings(self, **overrides: Any) -> MonitorSettings:
        """Aimed at the fakes, with short intervals so a test sees many checks."""
        settings = MonitorSettings(
            cp_id=CP_ID,
            engine=self.engine.address,
            central=self.central.address,
            state_dir=str(self.state_dir),
            registration_token=TOKEN,
            health_interval=0.2,
            health_timeout=0.3,
            retry_cap=0.5,
        )
        return replace(settings, **overrides)

    async def start(self, settings: MonitorSettings | None = None) -> RunningMonitor:
        monitor = Monitor(settings or self.settings())
        stop = asyncio.Event()
        handle = RunningMonitor(monitor, stop, asyncio.create_task(monitor.run(stop)))
        self.running.append(handle)
        return handle

    async def started_ok(self, settings: MonitorSettings | None = None) -> RunningMonitor:
        """Started, and the central has heard OK from it."""
        handle = await self.start(settings)
        await eventually(lambda: self.central.last_health() is Health.OK, what="Status OK")
        return handle


@dataclass
class MonitorProcess:
    proc: asyncio.subprocess.Process
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait(self, timeout: float = 15.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)
