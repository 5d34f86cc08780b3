"""Real ``evdriver`` processes, their output collected line by line.

Imported by name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import Any

from driver_scripted import secret_of
from evproto.secret_file import SecretFile
from evstack.localstack import console_script
from evstack.waiting import eventually

EVDRIVER = console_script("evdriver")


class DriverProcess:
    """One real ``evdriver`` process; its output is collected line by line."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.errors: list[str] = []
        assert proc.stdout is not None and proc.stderr is not None
        self._readers = [
            asyncio.create_task(self._collect(proc.stdout, self.lines)),
            asyncio.create_task(self._collect(proc.stderr, self.errors)),
        ]

    @staticmethod
    async def _collect(stream: asyncio.StreamReader, into: list[str]) -> None:
        while line := await stream.readline():
            into.append(line.decode(errors="replace").rstrip("\n"))

    @property
    def stdout(self) -> str:
        return "\n".join(self.lines)

    @property
    def stderr(self) -> str:
        return "\n".join(self.errors)

    def events(self) -> list[dict[str, Any]]:
        """Every stdout line parsed as JSON (fails if one is not)."""
        return [json.loads(line) for line in self.lines]

    async def expect(self, text: str, timeout: float = 20.0) -> None:
        await eventually(
            lambda: text in self.stdout, timeout, f"{text!r} in stdout:\n{self.stdout}"
        )

    async def expect_event(self, kind: str, timeout: float = 20.0) -> dict[str, Any]:
        def found() -> bool:
            return any(e["event"] == kind for e in self.events())

        await eventually(found, timeout, f"event {kind!r} in:\n{self.stdout}\n{self.stderr}")
        return next(e for e in self.events() if e["event"] == kind)

    async def wait(self, timeout: float = 30.0) -> int:
        try:
            code = await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(
                f"evdriver still running after {timeout} s:\n{self.stdout}\n{self.stderr}"
            ) from None
        await asyncio.gather(*self._readers)
        return code

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)


@dataclasses.dataclass
class DriverLauncher:
    bootstrap: str
    state_dir: Path
    started: list[DriverProcess] = dataclasses.field(default_factory=list)

    async def start(self, driver_id: str, *args: str, stdin: bytes | None = None) -> DriverProcess:
        self.enroll(driver_id)
        proc = await asyncio.create_subprocess_exec(
            EVDRIVER,
            "--id",
            driver_id,
            "--kafka",
            self.bootstrap,
            "--state-dir",
            str(self.state_dir),
            *args,
            stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if stdin is not None:
            assert proc.stdin is not None
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
        driver = DriverProcess(proc)
        self.started.append(driver)
        return driver

    def enroll(self, driver_id: str) -> None:
        """As the operator would: the driver's secret saved in its state directory."""
        secret_file = self.state_dir / f"{driver_id}.secret"
        if not secret_file.exists():
            SecretFile(secret_file, what="driver secret", remedy="").save(secret_of(driver_id))

    async def run(self, driver_id: str, *args: str, timeout: float = 30.0) -> DriverProcess:
        driver = await self.start(driver_id, *args)
        await driver.wait(timeout)
        return driver
