"""The harness itself, without an engine: how a chart pod becomes ``<engine> run``
arguments, and how a missing engine is reported (skipped, or failed under CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from evchart_pods import LocalCluster
from evchart_render import LOCAL_BROKER, render
from evcontainers_engine import Engine
from evcontainers_pods import ContainerCluster, memory_limit, security_flags


def test_the_charts_security_settings_become_engine_flags() -> None:
    chart = render()
    central = chart.one("StatefulSet", "-central")
    spec = central["spec"]["template"]["spec"]
    flags = security_flags(spec["securityContext"], spec["containers"][0]["securityContext"])
    assert flags == [
        "--user", "10001:10001", "--group-add", "10001", "--read-only",
        "--security-opt", "no-new-privileges", "--cap-drop", "ALL",
    ]  # fmt: skip


def test_a_security_setting_the_harness_cannot_apply_fails_loudly() -> None:
    with pytest.raises(AssertionError, match="privileged"):
        security_flags({}, {"privileged": False})
    with pytest.raises(AssertionError, match="Unconfined"):
        security_flags({"seccompProfile": {"type": "Unconfined"}}, {})


def test_memory_limits_keep_their_binary_unit() -> None:
    assert [memory_limit(q) for q in ("512Mi", "1Gi", "64Ki", "1000")] == [
        "512m", "1g", "64k", "1000",
    ]  # fmt: skip


def test_a_cp_pod_runs_as_two_containers_with_the_charts_args_and_mounts(tmp_path: Path) -> None:
    chart = render(LOCAL_BROKER)
    cluster = LocalCluster(chart, tmp_path, broker_port=19092)
    containers = ContainerCluster(Engine("docker"), cluster, "evtest-x")
    central = cluster.pod("StatefulSet", "evcharging-central")
    cp = cluster.pod("StatefulSet", "evcharging-cp")
    volumes = cluster.volumes(cp)
    engine, monitor = (containers.run_args(cp, c, volumes) for c in cp.spec["containers"])
    assert engine[engine.index("--name") + 1] == "evtest-x-evcharging-cp-0-engine"
    assert "evcharging/evengine:0.1.0" in engine and "--interactive" in engine
    # The chart's paths stay; the addresses map to this machine.
    args = engine[engine.index("evcharging/evengine:0.1.0") + 1 :]
    assert args[:4] == ["--cp-id", "CP-0", "--config", "/etc/evcharging/cp/CP-0.yaml"]
    assert "EV_KAFKA=127.0.0.1:19092" in engine
    assert f"{volumes['cp-config']}:/etc/evcharging/cp:ro" in engine
    assert f"{volumes['tmp-engine']}:/tmp" in engine
    central_port = cluster.port(central, 3440)
    assert f"127.0.0.1:{central_port}" in monitor
    assert f"{volumes['tokens']}:/etc/evcharging/tokens:ro" in monitor
    assert f"{volumes['state']}:/var/lib/evmonitor" in monitor
    assert monitor[monitor.index("--network") + 1] == "host"  # one namespace for the pod
