"""The chart on any cluster: prerequisites checked, names that never collide, images
pinned one by one, an optional Ingress, readiness that means something, rolls
when tokens change, and upgrades Kubernetes accepts."""

from __future__ import annotations

from typing import Any

import pytest
from evchart_make import make_dry_run
from evchart_render import KIND_VALUES, Rendered, annotations_of, render, values_from
from helm_python import HelmError

DIGEST = "sha256:" + "ab" * 32


def images(chart: Rendered) -> dict[str, str]:
    """container name -> image, over every workload."""
    return {c["name"]: c["image"] for _obj, c in chart.containers()}


def test_without_the_strimzi_api_the_chart_fails_naming_strimzi_and_how_to_install_it() -> None:
    with pytest.raises(HelmError) as failed:
        render(strimzi_api=False)
    message = str(failed.value)
    assert "the Strimzi API (kafka.strimzi.io/v1) is missing" in message
    assert "helm install strimzi oci://quay.io/strimzi-helm/strimzi-kafka-operator" in message
    assert "--version 1.2.0" in message
    assert "--api-versions kafka.strimzi.io/v1" in message  # the offline way out
    # Offline rendering, and a Kafka of one's own, need no Strimzi API.
    offline = render({"kafka": {"strimziApiCheck": False}}, strimzi_api=False)
    assert offline.of_kind("Kafka")
    external = render({"kafka": {"external": {"bootstrap": "kafka:9092"}}}, strimzi_api=False)
    assert not external.of_kind("Kafka") and not external.of_kind("KafkaNodePool")


def test_every_object_is_named_after_the_release() -> None:
    shop, lab = render(release="shop"), render(release="lab")
    for release, chart in (("shop", shop), ("lab", lab)):
        names = [(o["kind"], o["metadata"]["name"]) for o in chart.objects]
        assert all(name.startswith(f"{release}-evcharging") for _kind, name in names), names
    (pool,) = shop.of_kind("KafkaNodePool")
    assert pool["metadata"]["name"] == "shop-evcharging-kafka"
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == "shop-evcharging"
    # Two releases in one namespace share no object.
    named = {(o["kind"], o["metadata"]["name"]) for o in shop.objects}
    assert named.isdisjoint({(o["kind"], o["metadata"]["name"]) for o in lab.objects})


def test_global_takes_the_keys_of_an_umbrella_charts_other_subcharts() -> None:
    chart = render({"global": {"storageClass": "fast", "postgresql": {"auth": {"x": 1}}}})
    assert chart.one("StatefulSet", "-central")


def test_each_image_takes_its_own_registry_tag_or_digest() -> None:
    chart = render(
        {
            "global": {"image": {"tag": "9.9.9"}},
            "central": {"image": {"repository": "evcentral", "digest": DIGEST, "tag": "x"}},
            "chargingPoints": {
                "engine": {"image": {"repository": "evengine", "tag": "1.2.3"}},
                "monitor": {"image": {"repository": "evmonitor", "registry": "reg.example/ev"}},
            },
        }
    )
    found = images(chart)
    assert found["central"] == f"evcharging/evcentral@{DIGEST}"  # a digest wins
    assert found["engine"] == "evcharging/evengine:1.2.3"
    assert found["monitor"] == "reg.example/ev/evmonitor:9.9.9"
    assert found["driver"] == "evcharging/evdriver:9.9.9"
    assert images(render())["driver"] == "evcharging/evdriver:0.1.0"  # the appVersion
    with pytest.raises(HelmError, match="digest"):
        render({"drivers": {"image": {"repository": "evdriver", "digest": "latest"}}})


def test_an_ingress_serves_the_dashboard_when_asked() -> None:
    assert not render().of_kind("Ingress")
    chart = render({"ingress": {"enabled": True, "className": "nginx", "host": "ev.example"}})
    (ingress,) = chart.of_kind("Ingress")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    service = chart.one("Service", "-central")
    assert ingress["spec"]["ingressClassName"] == "nginx" and rule["host"] == "ev.example"
    assert path["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"name": "http"},
    }
    assert "http" in [p["name"] for p in service["spec"]["ports"]]
    assert "http://ev.example/" in chart.notes  # NOTES say where the dashboard is


def test_a_cp_pod_is_ready_only_while_its_monitor_is_authenticated() -> None:
    sts = render().one("StatefulSet", "-cp")
    monitor = next(
        c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "monitor"
    )
    assert monitor["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics-monitor"}
    assert monitor["livenessProbe"]["httpGet"]["path"] == "/metrics"  # alive while it retries


def central_checksum(values: dict[str, Any]) -> str:
    sts = render(values).one("StatefulSet", "-central")
    return annotations_of(sts["spec"]["template"])["checksum/secret"]


def test_new_tokens_roll_the_central() -> None:
    tokens = {
        "operatorToken": "a" * 40,
        "registrationToken": "b" * 40,
        "viewerToken": "v" * 40,
        "enrollmentToken": "e" * 40,
    }
    same = central_checksum({"central": {"auth": tokens}})
    assert central_checksum({"central": {"auth": tokens}}) == same
    changed = {**tokens, "operatorToken": "c" * 40}
    assert central_checksum({"central": {"auth": changed}}) != same


# What `kubectl apply` may change in a StatefulSet's spec; the rest is immutable.
STATEFULSET_MUTABLE = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}


def immutable_parts(chart: Rendered) -> dict[str, dict[str, Any]]:
    return {
        sts["metadata"]["name"]: {
            k: v for k, v in sts["spec"].items() if k not in STATEFULSET_MUTABLE
        }
        for sts in chart.of_kind("StatefulSet")
    }


def test_an_upgrade_of_replicas_prices_and_thresholds_changes_no_immutable_field() -> None:
    tokens = {"central": {"auth": {"operatorToken": "a" * 40, "registrationToken": "b" * 40}}}
    installed = render(values_from([KIND_VALUES], tokens))
    upgrade = {
        **tokens,
        "central": {**tokens["central"], "defaultPrice": 0.42, "missedHeartbeats": 5},
        "chargingPoints": {
            "replicas": 6,
            "sites": [{"location": "Elche", "price": 0.5}],
            "monitor": {"healthInterval": 2.0},
        },
        "drivers": {"replicas": 4},
        "kafka": {"nodePool": {"replicas": 3}, "topics": {"replicas": 3}},
        "monitoring": {"prometheusRule": {"cpBrokenFor": "2m", "authorizationP99Seconds": 1.0}},
    }
    upgraded = render(values_from([KIND_VALUES], upgrade))
    assert immutable_parts(upgraded) == immutable_parts(installed)
    assert {(o["kind"], o["metadata"]["name"]) for o in installed.objects} <= {
        (o["kind"], o["metadata"]["name"]) for o in upgraded.objects
    }
    replicas = {
        s["metadata"]["name"]: s["spec"]["replicas"] for s in upgraded.of_kind("StatefulSet")
    }
    assert replicas == {
        "evcharging-central": 1,
        "evcharging-cp": 6,
        "evcharging-driver": 4,
    }


@pytest.mark.parametrize(
    ("cluster", "context", "load"),
    [
        ("kind", "kind-evcharging", "kind load docker-image --name evcharging"),
        ("minikube", "evcharging", "minikube --profile evcharging image load"),
    ],
)
def test_the_cluster_targets_take_the_cluster_from_variables(
    cluster: str, context: str, load: str
) -> None:
    deploy = make_dry_run("deploy", f"CLUSTER={cluster}")
    assert f"--kube-context {context} " in deploy
    assert f"-f k8s/values-{cluster}.yaml" in deploy
    assert f"{load} evcharging/ev$s:0.1.0" in make_dry_run("load", f"CLUSTER={cluster}")
    e2e = make_dry_run("e2e-cluster", f"CLUSTER={cluster}")
    assert f"EV_KUBE_CONTEXT={context} " in e2e and f"EV_VALUES=k8s/values-{cluster}.yaml" in e2e
    mine = make_dry_run("deploy", f"CLUSTER={cluster}", "KUBE_CONTEXT=prod-eu")
    assert "--kube-context prod-eu " in mine
