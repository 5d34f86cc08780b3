"""The system under the dashboard tests: broker, central and CP-0 as processes, and
10,000 more CPs and a history of sessions seeded into the central's database."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from evcentral.db import Database
from evcentral.records import CpRow, SessionRecord, SessionStatus
from evproto.messages import Origin, Outcome
from evstack.localstack import LocalStack, ManagedProcess, log_tails
from evstack.waiting import wait_until

__all__ = ["FLEET_SIZE", "FleetSystem", "seeded_cp_id"]

FLEET_SIZE = 10_000
LIVE_CP = "CP-0"
_STREETS = ("Harbour", "Market", "Station", "Airport", "Campus", "Riverside", "Old Town", "Depot")
_OUTCOMES = (Outcome.COMPLETED, Outcome.COMPLETED, Outcome.COMPLETED, Outcome.ABORTED)
_START_TIMEOUT_S = 60.0


def seeded_cp_id(n: int) -> str:
    return f"CP-{n:05d}"


def seeded_location(n: int) -> str:
    return f"{_STREETS[n % len(_STREETS)]} {n // len(_STREETS) + 1}"


class FleetSystem:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.stack = LocalStack(workdir)
        # the seeded sessions: one every 15 minutes, the last a quarter of an hour ago
        self.session_start = time.time() - 60 * 3600
        self.drivers: list[ManagedProcess] = []

    @property
    def url(self) -> str:
        return f"{self.stack.http_url}/"

    @property
    def operator_token(self) -> str:
        return self.stack.operator_token

    def start(self) -> None:
        self.seed()
        self.stack.start_broker()
        self.stack.start_central()
        wait_until(lambda: self.get("/readyz")["ready"], _START_TIMEOUT_S, "the central ready")
        self.stack.start_cp(0, location="Harbour 0")
        self.wait_state(LIVE_CP, "ACTIVE")

    def seed(self) -> None:
        """10,000 CPs (CP-00001…) and 240 ended sessions, one every 15 minutes over
        the last 60 hours, drivers D-01…D-12 at the first 40 CPs."""
        db = Database(self.workdir / "central.db")
        db.migrate()
        now = time.time()
        with db.transaction():
            for n in range(1, FLEET_SIZE + 1):
                db.insert_cp(
                    CpRow(
                        cp_id=seeded_cp_id(n),
                        location=seeded_location(n),
                        price=round(0.25 + (n % 20) / 100, 2),
                        out_of_service=False,
                        stored_key="seeded-never-connects",
                        registered_at=now,
                    )
                )
            for n in range(240):
                at = self.session_start + n * 900
                kwh = round(5 + (n % 9) * 2.5, 3)
                outcome = _OUTCOMES[n % len(_OUTCOMES)]
                db.save_session(
                    SessionRecord(
                        session_id=f"seed-{n:04d}",
                        cp_id=seeded_cp_id(n % 40 + 1),
                        driver_id=f"D-{n % 12 + 1:02d}",
                        origin=Origin.DRIVER,
                        status=SessionStatus.ENDED,
                        authorized_at=at,
                        started_at=at + 20,
                        ended_at=at + 620,
                        kwh=kwh,
                        eur=round(kwh * 0.35, 2),
                        price=0.35,
                        last_seq=600,
                        outcome=outcome,
                        reason="engine reported KO" if outcome is Outcome.ABORTED else "",
                    )
                )
        db.close()

    def stop(self) -> None:
        for driver in self.drivers:
            driver.stop()
        self.stack.stop()

    def start_driver(self, driver_id: str, *args: str) -> ManagedProcess:
        """``evdriver ARGS`` as driver ``driver_id`` (stopped with the system)."""
        driver = self.stack.driver_process(driver_id, *args).start()
        self.drivers.append(driver)
        return driver

    def log_tails(self, lines: int = 20) -> str:
        return log_tails([*self.stack.processes(), *self.drivers], lines)

    # --- what the central says, and making things happen -----------------------------

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.stack.http_url}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.operator_token}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def get(self, path: str) -> Any:
        return self.call("GET", path)

    def cp(self, cp_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/api/cps/{cp_id}")
        return found

    def wait_state(self, cp_id: str, state: str) -> None:
        wait_until(lambda: self.cp(cp_id)["state"] == state, _START_TIMEOUT_S, f"{cp_id} {state}")

    def engine(self, command: str, cp_id: str = LIVE_CP) -> None:
        """``evengine ctl COMMAND`` at the CP's engine (ko, ok, plug, unplug)."""
        done = self.stack.cps[cp_id].ctl(command)
        assert done.returncode == 0, f"evengine ctl {command} at {cp_id}: {done.stderr}"
