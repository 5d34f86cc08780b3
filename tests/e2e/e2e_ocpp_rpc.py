"""A station on the npm ``ocpp-rpc`` client under Node (ocpp_rpc/station.cjs).

``ocpp-rpc`` is installed with ``npm ci`` into ``ocpp_rpc/node_modules``
(gitignored) the first time a test needs it; without node and npm the tests
skip, unless CI requires every tool (``EV_REQUIRE_TOOLS=1`` or ``CI=true``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from evstack.localstack import LocalStack, ManagedProcess
from evstack.tools import require_tool
from evstack.waiting import wait_until

HERE = Path(__file__).parent / "ocpp_rpc"
SCRIPT = HERE / "station.cjs"
_NPM_TIMEOUT_S = 300


def install_ocpp_rpc() -> Path:
    """``npm ci`` once (the lock file pins ocpp-rpc and its dependencies)."""
    node = require_tool("node", "to run the ocpp-rpc station")
    npm = require_tool("npm", "to install the ocpp-rpc station (npm ci)")
    if not (HERE / "node_modules" / "ocpp-rpc" / "package.json").is_file():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--silent"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=_NPM_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, f"npm ci failed: {done.stderr[-2000:]}"
    return Path(node)


class NodeStation:
    """One run of station.cjs; its stdout is one JSON object per step."""

    def __init__(
        self, stack: LocalStack, node: Path, station_id: str, protocol: str, scenario: str,
        *extra: str,
    ) -> None:  # fmt: skip
        self.station_id = station_id
        out = stack.workdir / f"node-{station_id}.out"
        url = f"ws://{stack.host}:{stack.ocpp_port}/ocpp"
        self.process = ManagedProcess(
            f"ocpp-rpc {station_id}",
            [str(node), str(SCRIPT), url, station_id, protocol, scenario, *extra],
            {},
            stack.workdir / f"node-{station_id}.log",
            stdout_path=out,
        )
        self._out = out
        self.process.start()

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = self._out.read_text().splitlines()
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in lines if line.startswith("{")]

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e["event"] == kind]

    def wait_for(self, kind: str, timeout: float = 30.0) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            errors = self.of("error")
            assert not errors, f"the ocpp-rpc station failed: {errors}; {self.process.log_text()}"
            found = self.of(kind)
            return found[0] if found else None

        return wait_until(seen, timeout, f"{self.station_id} (ocpp-rpc) says {kind}")

    def stop(self) -> None:
        self.process.stop(5)
