"""The chart's command lines run: its pods as local processes complete a supply.

The release is rendered with the default values; the central, charging point
and driver pods (ordinal 0) start from their rendered containers (see
evchart_pods), the topics come from the KafkaTopic objects as Strimzi's Topic
Operator would make them, and the ``helm test`` pod's command must complete a
supply at CP-0 with exit code 0. Every pod then gets SIGTERM and must exit 0
within the pods' terminationGracePeriodSeconds.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from evchart_pods import LocalCluster, Pod, kafka_topics
from evchart_render import Rendered, render
from evproto.broker import EmbeddedBroker
from evproto.localstack import ManagedProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STARTUP_DEADLINE_S = 90.0
SUPPLY_DEADLINE_S = 90.0


def eventually(
    what: str, condition: Callable[[], bool], deadline_s: float, processes: list[ManagedProcess]
) -> None:
    """Poll until ``condition``; fail at the deadline, or at once when a process died."""
    deadline = time.monotonic() + deadline_s
    while not condition():
        dead = [p.name for p in processes if not p.alive]
        if dead or time.monotonic() > deadline:
            problem = f"exited early: {dead}" if dead else f"not within {deadline_s:.0f} s"
            raise AssertionError(f"{what}: {problem}\n{logs(processes)}")
        time.sleep(0.2)


def answers_200(url: str) -> Callable[[], bool]:
    return lambda: http_get(url)[0] == 200


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), b""
    except OSError:
        return 0, b""


def create_topics_like_strimzi(chart: Rendered, bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    wanted = [NewTopic(name, partitions, 1) for name, partitions in kafka_topics(chart).items()]
    for future in admin.create_topics(wanted, request_timeout=15).values():
        future.result(15)


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


def test_the_charts_pods_complete_a_supply_and_stop_cleanly(
    broker: EmbeddedBroker, pods_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith("EV_")]:
        monkeypatch.delenv(name)  # only the chart's settings reach the processes
    chart = render()
    create_topics_like_strimzi(chart, broker.bootstrap)
    cluster = LocalCluster(chart, pods_dir, broker.port)
    pods: list[Pod] = [
        cluster.pod("StatefulSet", "evcharging-central"),
        cluster.pod("StatefulSet", "evcharging-cp"),
        cluster.pod("StatefulSet", "evcharging-driver"),
    ]
    (test_pod,) = [cluster.pod("Pod", hook["metadata"]["name"]) for hook in chart.hooks]
    processes = [p for pod in pods for p in cluster.processes(pod)]
    try:
        for process in processes:
            process.start()
        probes = [url for pod in pods for url in cluster.probe_urls(pod)]
        for name, url in probes:
            eventually(f"{name} {url} answers 200", answers_200(url), STARTUP_DEADLINE_S, processes)
        api = next(url for name, url in probes if "readinessProbe" in name and "/readyz" in url)
        cp0 = api.replace("/readyz", "/api/cps/CP-0")

        def cp0_active() -> bool:
            status, body = http_get(cp0)
            return status == 200 and json.loads(body)["state"] == "ACTIVE"

        eventually("CP-0 is ACTIVE at the central", cp0_active, STARTUP_DEADLINE_S, processes)

        (supply,) = cluster.processes(test_pod)
        supply.start()
        assert supply.proc is not None
        code = supply.proc.wait(SUPPLY_DEADLINE_S)
        assert code == 0, f"the helm test supply exited {code}\n{logs([supply, *processes])}"
    finally:
        codes = {p.name: p.stop(timeout=15.0) for p in processes}
    assert codes == {p.name: 0 for p in processes}, logs(processes)
