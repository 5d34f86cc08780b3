"""The chart's command lines run: its pods as local processes complete a supply.

The release is rendered with the default values except Kafka's security
(``LOCAL_BROKER``: the embedded broker has no SCRAM or TLS listener; the kind e2e
runs it for real); the monitor port runs over TLS with the chart's generated CA,
the monitors checking the certificate. The central, charging point
and driver pods (ordinal 0) start from their rendered containers (see
evchart_pods), the topics come from the KafkaTopic objects as Strimzi's Topic
Operator would make them, and the ``helm test`` pod's command must complete a
supply at CP-0 with exit code 0. Every pod then gets SIGTERM and must exit 0
within the pods' terminationGracePeriodSeconds.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from evchart_pods import LocalCluster, create_topics_like_strimzi
from evchart_render import LOCAL_BROKER, Rendered, render
from evstack.broker import EmbeddedBroker
from evstack.localstack import ManagedProcess
from evstack.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STARTUP_DEADLINE_S = 90.0
SUPPLY_DEADLINE_S = 90.0
GRACE_PERIOD_S = 15.0  # the pods' terminationGracePeriodSeconds


def wait_while_alive(
    what: str, condition: Callable[[], bool], deadline_s: float, processes: list[ManagedProcess]
) -> None:
    """Poll until ``condition``; fail at the deadline, or at once when a process died."""

    def met() -> bool:
        dead = [p.name for p in processes if not p.alive]
        if dead:
            raise AssertionError(f"{what}: exited early: {dead}")
        return condition()

    try:
        wait_until(met, deadline_s, what, poll=0.2)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{logs(processes)}") from None


def answers_200(url: str) -> Callable[[], bool]:
    return lambda: http_get(url)[0] == 200


def http_get(url: str, token: str = "") -> tuple[int, bytes]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except OSError:
        return 0, b""


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    embedded = EmbeddedBroker(log_path=tmp_path / "broker.log")
    embedded.start(create=False)  # the release's KafkaTopics say which topics exist
    yield embedded
    embedded.stop()


@pytest.fixture
def pods_dir() -> Iterator[Path]:
    """Short: a Unix socket path (the engine's control socket) has at most 107 bytes."""
    path = Path(tempfile.mkdtemp(prefix="evpods-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def logs(processes: list[ManagedProcess]) -> str:
    return "\n".join(f"--- {p.name} ---\n{p.log_text()[-3000:]}" for p in processes)


@dataclass
class LocalRelease:
    """The release's central, CP and driver pods (ordinal 0) running as processes."""

    cluster: LocalCluster
    processes: list[ManagedProcess]
    central_url: str

    def api(self, path: str) -> Any:
        """GET with the operator token of the release's Secret (reads need a token)."""
        (secret,) = [
            s for s in self.cluster.chart.of_kind("Secret") if "operator-token" in s["data"]
        ]
        token = base64.b64decode(secret["data"]["operator-token"]).decode()
        status, body = http_get(self.central_url + path, token)
        return json.loads(body) if status == 200 else None

    def wait(self, what: str, condition: Callable[[], bool], deadline_s: float) -> None:
        wait_while_alive(what, condition, deadline_s, self.processes)


@pytest.fixture
def start_release(
    broker: EmbeddedBroker, pods_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[Rendered], LocalRelease]]:
    """Start a rendered release once its pods are ready and CP-0 is ACTIVE; at the end
    every process gets SIGTERM and must exit 0 within the grace period."""
    for name in [n for n in os.environ if n.startswith("EV_")]:
        monkeypatch.delenv(name)  # only the chart's settings reach the processes
    started: list[ManagedProcess] = []

    def start(chart: Rendered) -> LocalRelease:
        create_topics_like_strimzi(chart, broker.bootstrap)
        cluster = LocalCluster(chart, pods_dir, broker.port)
        # Drivers start once CP-0 is ACTIVE: a batch's first request must meet a
        # registered CP, as it does when a user adds a batch to a running release.
        stages = (("central", "cp"), ("driver",))
        release: LocalRelease | None = None
        for stage in stages:
            pods = [cluster.pod("StatefulSet", f"evcharging-{c}") for c in stage]
            processes = [p for pod in pods for p in cluster.processes(pod)]
            started.extend(processes)
            for process in processes:
                process.start()
            probes = [probe for pod in pods for probe in cluster.probe_urls(pod)]
            for name, url in probes:
                wait_while_alive(
                    f"{name} {url} answers 200", answers_200(url), STARTUP_DEADLINE_S, started
                )
            if release is None:
                readyz = next(url for name, url in probes if url.endswith("/readyz"))
                release = LocalRelease(cluster, started, readyz.removesuffix("/readyz"))
                release.wait(
                    "CP-0 is ACTIVE", state_is(release, "CP-0", "ACTIVE"), STARTUP_DEADLINE_S
                )
        assert release is not None
        return release

    yield start
    codes = {p.name: p.stop(timeout=GRACE_PERIOD_S) for p in started}
    assert codes == {p.name: 0 for p in started}, logs(started)


def state_is(release: LocalRelease, cp_id: str, state: str) -> Callable[[], bool]:
    return lambda: (release.api(f"/api/cps/{cp_id}") or {}).get("state") == state


def test_the_helm_test_pod_completes_a_supply(
    start_release: Callable[[Rendered], LocalRelease],
) -> None:
    chart = render(LOCAL_BROKER)
    release = start_release(chart)
    (hook,) = chart.hooks
    (supply,) = release.cluster.processes(release.cluster.pod("Pod", hook["metadata"]["name"]))
    supply.start()
    assert supply.proc is not None
    code = supply.proc.wait(SUPPLY_DEADLINE_S)
    assert code == 0, f"the helm test supply exited {code}\n{logs([supply, *release.processes])}"


def test_a_batch_driver_pod_runs_its_batch_then_idles(
    start_release: Callable[[Rendered], LocalRelease],
) -> None:
    release = start_release(render({**LOCAL_BROKER, "drivers": {"batch": "CP-0\n"}}))
    cluster = release.cluster
    release.wait("the batch supplies at CP-0", state_is(release, "CP-0", "SUPPLYING"), 60)
    # A batch line has no limit: the supply ends when the vehicle is unplugged at the CP.
    unplug = cluster.exec(cluster.pods["evcharging-cp-0"], "engine", "evengine", "ctl", "unplug")
    unplug.start()
    assert unplug.proc is not None
    assert unplug.proc.wait(30) == 0, unplug.log_text()
    driver = next(p for p in release.processes if p.name == "evcharging-driver-0/driver")
    # After the batch (and its 4 s pause) the shell execs `evdriver … idle` in its place.
    release.wait("the driver pod idles after its batch", runs_idle(driver), SUPPLY_DEADLINE_S)
    ended = release.api("/api/sessions?driver_id=evcharging-driver-0")["sessions"]
    assert [(s["cp_id"], s["outcome"]) for s in ended] == [("CP-0", "completed")]
    (probe,) = [
        url
        for name, url in cluster.probe_urls(cluster.pods["evcharging-driver-0"])
        if "readiness" in name
    ]
    release.wait("the idle driver serves its probes", answers_200(probe), 30)


def runs_idle(process: ManagedProcess) -> Callable[[], bool]:
    cmdline = Path(f"/proc/{process.pid}/cmdline")
    return lambda: b"\0idle" in cmdline.read_bytes()
