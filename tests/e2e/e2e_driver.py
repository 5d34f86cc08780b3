"""A driver process (``evdriver --json …``) and what its user sees: the events it
printed, its exit code, its stderr."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from evstack.localstack import ManagedProcess
from evstack.waiting import wait_until

__all__ = ["DriverResult", "DriverRun"]


@dataclass(frozen=True, slots=True)
class DriverResult:
    exit_code: int
    stdout: str
    stderr: str
    events: list[dict[str, Any]]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == kind]

    @property
    def ticket(self) -> dict[str, Any]:
        tickets = self.of("ticket")
        assert len(tickets) == 1, f"expected one ticket, the driver showed {tickets}"
        return tickets[0]

    def __str__(self) -> str:
        return f"exit {self.exit_code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr[-3000:]}"


class DriverRun:
    def __init__(self, driver_id: str, process: ManagedProcess) -> None:
        self.driver_id = driver_id
        self.process = process
        assert process.stdout_path is not None

    def stdout(self) -> str:
        assert self.process.stdout_path is not None
        try:
            return self.process.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.stdout().splitlines():
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue  # a line still being written
        return out

    def wait_for_event(self, kind: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """The first ``kind`` event whose fields include ``fields``."""

        def found() -> dict[str, Any] | None:
            for event in self.events():
                if event.get("event") == kind and all(event.get(k) == v for k, v in fields.items()):
                    return event
            if not self.process.alive:
                raise AssertionError(f"driver {self.driver_id} exited: {self.result()}")
            return None

        return wait_until(found, timeout, f"driver {self.driver_id} shows {kind} {fields or ''}")

    def wait(self, timeout: float) -> DriverResult:
        wait_until(lambda: not self.process.alive, timeout, f"driver {self.driver_id} to exit")
        return self.result()

    def result(self) -> DriverResult:
        proc = self.process.proc
        assert proc is not None
        code = proc.poll()
        return DriverResult(
            exit_code=-1 if code is None else code,
            stdout=self.stdout(),
            stderr=self.process.log_text(),
            events=self.events(),
        )

    def kill(self) -> None:
        """SIGKILL: the driver's device dies without a word."""
        self.process.kill()
