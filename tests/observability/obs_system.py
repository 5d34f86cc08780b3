"""The local system under observation: broker, central, two CPs, a driver and the OCPP
gateway with one station, as processes.

Started through :class:`evstack.localstack.LocalStack` (the command lines of
``make run`` and the chart), with every process that has no HTTP server serving
``--metrics`` on a port of its own, as the chart's pods do on 9100/9101/9102/9103.
The scenario leaves something to see on every panel: driver ``D1`` runs a batch
of CP-0 then CP-1; the CP-0 supply completes (the vehicle is unplugged), the
CP-1 supply keeps running while the tests look. OCPP 1.6J station ``ST-1``
boots, reports its connector (CP ``ST-1-1``) and heartbeats; it boots again once
Prometheus scrapes, so the gateway's calls to it (TriggerMessage after each boot)
have a round trip rate to show.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evstack.broker import free_port
from evstack.localstack import LocalStack, ManagedProcess, log_tails
from evstack.waiting import wait_until
from obs_chart import ChartRelease
from obs_prometheus import Prometheus, ScrapeTarget
from obs_station import ObservedStation
from obs_tools import prometheus_tool
from prometheus_client.parser import text_string_to_metric_families

__all__ = ["DRIVER_ID", "STATION_ID", "Endpoint", "Observed", "ObservedSystem", "scrape"]

DRIVER_ID = "D1"
CP_IDS = ("CP-0", "CP-1")
STATION_ID = "ST-1"
# The chart's app.kubernetes.io/component of the pod each kind of process runs in.
_CHART_COMPONENT = {"engine": "cp", "monitor": "cp", "driver": "driver", "ocpp": "ocpp"}
# A Deployment's pod: <fullname>-ocpp-<ReplicaSet hash>-<suffix>.
_GATEWAY_POD = "ocpp-6d5f8c7b9d-x4k2q"
_HOST = "127.0.0.1"
_START_TIMEOUT_S = 60.0
_SUPPLY_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A process's ``/metrics``: the component it belongs to and where it is served."""

    name: str  # "central", "CP-0/engine", …, "driver D1"
    component: str  # central | engine | monitor | driver | ocpp
    address: str  # HOST:PORT
    pod: str  # the pod and container it would be in the chart
    container: str

    @property
    def url(self) -> str:
        return f"http://{self.address}/metrics"


class ObservedSystem:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.stack = LocalStack(workdir)
        self.endpoints: list[Endpoint] = [
            Endpoint(
                "central", "central", f"{_HOST}:{self.stack.http_port}", "central-0", "central"
            )
        ]
        self.driver: ManagedProcess | None = None
        self.station: ObservedStation | None = None

    # --- processes --------------------------------------------------------------------

    def start(self) -> None:
        """Broker, central, the CPs and the gateway with its station, each CP ACTIVE at the end."""
        self.stack.start_broker()
        self.stack.start_central()
        gateway = Endpoint(
            "ocpp gateway", "ocpp", f"{_HOST}:{free_port(_HOST)}", _GATEWAY_POD, "ocpp"
        )
        self.endpoints.append(gateway)
        self.stack.start_gateway("--metrics", gateway.address)
        for index, cp_id in enumerate(CP_IDS):
            engine, monitor = self._endpoint(cp_id, "engine"), self._endpoint(cp_id, "monitor")
            self.stack.start_cp(
                index,
                engine_args=("--metrics", engine.address, "--plug-delay", "0.5"),
                monitor_args=("--metrics", monitor.address, "--retry-cap", "2"),
            )
        self._endpoint(DRIVER_ID, "driver")  # reserved now so Prometheus knows it from the start
        wait_until(
            lambda: all(self.cp(cp_id)["state"] == "ACTIVE" for cp_id in CP_IDS),
            _START_TIMEOUT_S,
            "every CP ACTIVE at the central",
        )
        self.station = ObservedStation(STATION_ID, self.stack.ocpp_port)
        self.station.come_online()
        wait_until(
            lambda: self.cp(f"{STATION_ID}-1")["state"] == "ACTIVE",
            _START_TIMEOUT_S,
            f"{STATION_ID}'s connector ACTIVE at the central",
        )
        self.wait_gateway_calls(1)

    def _endpoint(self, owner: str, component: str) -> Endpoint:
        index = owner.rpartition("-")[2] if owner.startswith("CP-") else "0"
        pod = f"cp-{index}" if component in {"engine", "monitor"} else "driver-0"
        name = f"{owner}/{component}" if component != "driver" else f"driver {owner}"
        endpoint = Endpoint(name, component, f"{_HOST}:{free_port(_HOST)}", pod, component)
        self.endpoints.append(endpoint)
        return endpoint

    def run_sessions(self) -> None:
        """The station boots again; D1's batch: a completed supply at CP-0, then a running
        one at CP-1."""
        assert self.station is not None
        self.station.boot()
        self.wait_gateway_calls(2)
        (driver,) = self.of("driver")
        batch = self.workdir / "batch.txt"
        batch.write_text("\n".join(CP_IDS) + "\n")
        self.driver = self.stack.driver_process(
            DRIVER_ID, "--metrics", driver.address, "batch", str(batch), "--interval", "1"
        ).start()
        self.wait_supplying("CP-0")
        self.ctl("CP-0", "unplug")
        wait_until(
            lambda: any(s["outcome"] == "completed" for s in self.sessions("CP-0")),
            _SUPPLY_TIMEOUT_S,
            "the CP-0 session completed",
        )
        self.wait_supplying("CP-1")

    def wait_supplying(self, cp_id: str) -> None:
        wait_until(
            lambda: self.cp(cp_id)["state"] == "SUPPLYING" and self.cp(cp_id)["kwh"] > 0,
            _SUPPLY_TIMEOUT_S,
            f"{cp_id} SUPPLYING with energy counted",
        )

    def wait_gateway_calls(self, count: int) -> None:
        """Until the gateway has timed ``count`` calls to the station (one per boot)."""
        (gateway,) = self.of("ocpp")

        def calls() -> float:
            families = text_string_to_metric_families(scrape(gateway))
            return sum(
                s.value
                for family in families
                for s in family.samples
                if s.name == "evcharging_ocpp_call_latency_seconds_count"
            )

        wait_until(lambda: calls() >= count, _START_TIMEOUT_S, f"{count} gateway calls timed")

    def ctl(self, cp_id: str, command: str) -> None:
        done = self.stack.cps[cp_id].ctl(command)
        assert done.returncode == 0, f"evengine ctl {command} at {cp_id}: {done.stderr}"

    def stop(self) -> None:
        if self.driver is not None:
            self.driver.stop()
        if self.station is not None:
            self.station.close()
        self.stack.stop()

    def log_tails(self, lines: int = 20) -> str:
        return log_tails([*self.stack.processes(), *([self.driver] if self.driver else [])], lines)

    # --- what it shows ----------------------------------------------------------------

    def of(self, component: str) -> list[Endpoint]:
        return [e for e in self.endpoints if e.component == component]

    def endpoint(self, name: str) -> Endpoint:
        (found,) = (e for e in self.endpoints if e.name == name)
        return found

    def get_json(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.stack.http_url}{path}")
        request.add_header("Authorization", f"Bearer {self.stack.viewer_token}")
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.load(answer)

    def cp(self, cp_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get_json(f"/api/cps/{cp_id}")
        return found

    def sessions(self, cp_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.get_json(f"/api/sessions?cp_id={cp_id}")["sessions"]
        return found

    def scrape_targets(self, release: ChartRelease) -> list[ScrapeTarget]:
        """The endpoints labelled as the prometheus-operator labels the chart's targets."""
        pods = [e for e in self.endpoints if e.component != "central"]
        unscraped = {_CHART_COMPONENT[e.component] for e in pods} - release.pod_components
        assert not unscraped, f"the chart's PodMonitor does not scrape {sorted(unscraped)}"
        return [
            ScrapeTarget(
                e.address,
                release.central_job if e.component == "central" else release.pod_job,
                {
                    "namespace": release.namespace,
                    "pod": f"{release.fullname}-{e.pod}",
                    "container": e.container,
                },
            )
            for e in self.endpoints
        ]


class Observed:
    """The running system, and its Prometheus when the binary is installed."""

    def __init__(self, system: ObservedSystem, prometheus: Prometheus | None) -> None:
        self.system = system
        self._prometheus = prometheus

    @property
    def prometheus(self) -> Prometheus:
        if self._prometheus is None:
            prometheus_tool("prometheus")  # skips, or fails under CI
            raise AssertionError("prometheus was installed after the session started")
        return self._prometheus


def scrape(endpoint: Endpoint) -> str:
    """The endpoint's exposition text."""
    with urllib.request.urlopen(endpoint.url, timeout=5) as answer:
        text: str = answer.read().decode()
    return text
