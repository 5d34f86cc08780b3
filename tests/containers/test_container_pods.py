"""The chart's pods as containers of the real images: what a user of the cluster does.

The release is rendered with the default values (images tagged as ``make images``
tags them); its central, CP-0 (``engine`` and ``monitor`` containers, one network
namespace) and driver-0 pods run as containers under the chart's security
settings (see evcontainers_pods), against the embedded broker with the topics of
the release's KafkaTopics. The tests run in order on one release: a supply by
``exec`` into the driver (the users' ``kubectl exec``), a fault by ``evengine ctl``
in the engine container, the ``helm test`` pod, the central container killed and
restarted mid-supply, and last ``<engine> stop`` of every running container.
"""

from __future__ import annotations

import base64
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from evchart_pods import LocalCluster, Pod, create_topics_like_strimzi
from evchart_render import LOCAL_BROKER, render
from evcontainers_engine import Engine, image_registry, image_tag
from evcontainers_pods import ContainerCluster
from evstack.broker import EmbeddedBroker
from evstack.waiting import wait_until

pytestmark = [pytest.mark.containers, pytest.mark.e2e, pytest.mark.slow]

STARTUP_DEADLINE_S = 90.0
SUPPLY_DEADLINE_S = 90.0
DRIVER = "evcharging-driver-0"


def http_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=2.0) as response:
            return json.loads(response.read(1_000_000))
    except (OSError, ValueError):
        return None


def answers_200(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return int(response.status) == 200
    except (OSError, urllib.error.HTTPError):
        return False


def events(stdout: str) -> list[dict[str, Any]]:
    """The driver's ``--json`` events, one per line."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def ticket_of(stdout: str) -> dict[str, Any]:
    tickets = [e for e in events(stdout) if e.get("event") == "ticket"]
    assert len(tickets) == 1, f"expected one ticket, the driver showed:\n{stdout}"
    return tickets[0]


@dataclass
class Release:
    containers: ContainerCluster
    pods: dict[str, Pod]
    central_url: str

    def api(self, path: str) -> Any:
        """GET with the operator token of the release's Secret (reads need a token; a
        viewer's would show drivers as pseudonyms)."""
        (secret,) = [
            s
            for s in self.containers.cluster.chart.of_kind("Secret")
            if "operator-token" in s["data"]
        ]
        token = base64.b64decode(secret["data"]["operator-token"]).decode()
        return http_json(self.central_url + path, token)

    def cp_state(self, cp_id: str) -> str | None:
        found = self.api(f"/api/cps/{cp_id}")
        return None if found is None else str(found.get("state"))

    def wait_state(self, cp_id: str, state: str, deadline_s: float) -> None:
        wait_until(
            lambda: self.cp_state(cp_id) == state, deadline_s, f"{cp_id} is {state} at the central"
        )

    def wait_ready(self, pod: Pod) -> None:
        for name, url in self.containers.cluster.probe_urls(pod):
            wait_until(lambda url=url: answers_200(url), STARTUP_DEADLINE_S, f"{name} {url}")

    def driver(self, *command: str, timeout: float) -> tuple[int, str]:
        done = self.containers.engine.run(
            "exec", self.containers.name(self.pods[DRIVER], "driver"), *command,
            timeout=timeout, check=False,
        )  # fmt: skip
        return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def release(engine: Engine, images: object) -> Iterator[Release]:
    image = {"registry": image_registry(), "tag": image_tag()}
    chart = render({**LOCAL_BROKER, "global": {"image": image}})
    workdir = Path(tempfile.mkdtemp(prefix="evctr-"))
    broker = EmbeddedBroker(log_path=workdir / "broker.log")
    broker.start(create=False)  # the release's KafkaTopics say which topics exist
    containers = ContainerCluster(
        engine, LocalCluster(chart, workdir, broker.port), f"evtest-{workdir.name[6:]}"
    )
    try:
        create_topics_like_strimzi(chart, broker.bootstrap)
        cluster = containers.cluster
        central = cluster.pod("StatefulSet", "evcharging-central")
        cp = cluster.pod("StatefulSet", "evcharging-cp")
        for pod in (central, cp):
            containers.start(pod)
        (readyz,) = [url for _n, url in cluster.probe_urls(central) if url.endswith("/readyz")]
        release = Release(containers, cluster.pods, readyz.removesuffix("/readyz"))
        release.wait_ready(central)
        release.wait_ready(cp)
        release.wait_state("CP-0", "ACTIVE", STARTUP_DEADLINE_S)
        driver = cluster.pod("StatefulSet", "evcharging-driver")
        containers.start(driver)
        release.wait_ready(driver)
        yield release
    except BaseException:
        print(containers.all_logs())
        raise
    finally:
        containers.remove_all()
        broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def test_every_container_runs_under_the_charts_security_settings(release: Release) -> None:
    engine = release.containers.engine
    for name in release.containers.names.values():
        found = engine.inspect("container", name)
        assert found is not None and found["State"]["Running"], name
        host = found["HostConfig"]
        assert found["Config"]["User"] == "10001:10001", name
        assert host["ReadonlyRootfs"] is True, name
        assert [c.upper() for c in host["CapDrop"]] in (["ALL"], ["CAP_ALL"]), name
        assert "no-new-privileges" in host["SecurityOpt"], name
        status = engine.run("exec", name, "cat", "/proc/1/status").stdout
        assert "CapEff:\t0000000000000000" in status, f"{name} has capabilities"
        write = engine.run("exec", name, "touch", "/app/x", check=False)
        assert write.returncode != 0 and "Read-only file system" in write.stderr, name


def test_the_cp_pods_engine_and_monitor_share_one_network_namespace(release: Release) -> None:
    cp = release.pods["evcharging-cp-0"]
    namespaces = {
        container: release.containers.exec(cp, container, "readlink", "/proc/1/ns/net").stdout
        for container in ("engine", "monitor")
    }
    assert namespaces["engine"] == namespaces["monitor"], namespaces


def test_exec_into_the_driver_container_completes_a_supply_with_a_ticket(release: Release) -> None:
    code, output = release.driver(
        "evdriver", "--json", "request", "CP-0", "--max-kwh", "0.01", timeout=SUPPLY_DEADLINE_S
    )
    assert code == 0, output
    ticket = ticket_of(output)
    assert ticket["cp_id"] == "CP-0" and ticket["kwh"] == pytest.approx(0.01)
    release.wait_state("CP-0", "ACTIVE", 30)


def test_evengine_ctl_ko_and_ok_through_exec_break_and_repair_the_cp(release: Release) -> None:
    cp = release.pods["evcharging-cp-0"]
    release.containers.exec(cp, "engine", "evengine", "ctl", "ko")
    release.wait_state("CP-0", "BROKEN_DOWN", 10)
    release.containers.exec(cp, "engine", "evengine", "ctl", "ok")
    release.wait_state("CP-0", "ACTIVE", 10)


def test_the_helm_test_pod_completes_a_supply_as_a_container(release: Release) -> None:
    containers = release.containers
    (hook,) = containers.cluster.chart.hooks
    pod = containers.cluster.pod("Pod", hook["metadata"]["name"])
    (name,) = containers.start(pod)
    wait_until(
        lambda: not containers.state(name)["Running"], SUPPLY_DEADLINE_S, "the test pod ends"
    )
    assert containers.state(name)["ExitCode"] == 0, containers.logs(name)
    release.wait_state("CP-0", "ACTIVE", 30)


def test_the_central_container_killed_and_restarted_keeps_the_supplys_ticket(
    release: Release,
) -> None:
    containers = release.containers
    central = containers.name(release.pods["evcharging-central-0"], "central")
    supply = containers.exec_in_background(
        release.pods[DRIVER], "driver", "evdriver", "--json", "request", "CP-0", "--max-kwh", "0.05"
    )
    try:
        release.wait_state("CP-0", "SUPPLYING", 30)
        containers.kill(central)  # SIGKILL: no drain, as when the node loses the pod
        wait_until(lambda: not containers.state(central)["Running"], 15, "the central is dead")
        containers.start_again(central)
        release.wait_ready(release.pods["evcharging-central-0"])
        stdout, stderr = supply.communicate(timeout=SUPPLY_DEADLINE_S)
    finally:
        if supply.poll() is None:
            supply.kill()
    assert supply.returncode == 0, stdout + stderr
    assert ticket_of(stdout)["kwh"] == pytest.approx(0.05)
    sessions = release.api(f"/api/sessions?driver_id={DRIVER}")["sessions"]
    assert [(s["cp_id"], s["outcome"]) for s in sessions].count(("CP-0", "completed")) == 2


def test_stop_ends_every_container_with_exit_0_within_its_grace_period(release: Release) -> None:
    results = {}
    for (pod_name, _container), name in release.containers.names.items():
        if not release.containers.state(name)["Running"]:
            continue  # the helm test pod, which ended by itself
        grace = int(release.pods[pod_name].spec["terminationGracePeriodSeconds"])
        code, took = release.containers.stop(name, grace)
        results[name] = (code, took < grace)
    assert len(results) == 4  # central, engine, monitor, driver
    assert results == {name: (0, True) for name in results}, release.containers.all_logs()
