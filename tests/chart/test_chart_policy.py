"""What the rendered chart must do, checked on its objects (see docs/interfaces.md)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from evchart_render import KIND_VALUES, REPO, Manifest, Rendered, annotations_of, render
from evchart_variants import VARIANTS
from evproto.topics import Topic
from evstack.tools import require_tool

SELECTOR_KEYS = {
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/component",
}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value, or the valueFrom mapping."""
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def container(chart: Rendered, workload: str, name: str) -> dict[str, Any]:
    spec = chart.one("StatefulSet", workload)["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] if c["name"] == name)


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


# --- charging points ---------------------------------------------------------------


def test_engine_and_monitor_are_two_containers_of_one_pod(default_chart: Rendered) -> None:
    pod = default_chart.one("StatefulSet", "-cp")["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["engine", "monitor"]
    engine, monitor = pod["containers"]
    # The monitor reaches its engine inside the pod.
    assert flag(engine["args"], "--listen") == flag(monitor["args"], "--engine") == "127.0.0.1:5500"
    # `kubectl attach -it … -c engine` gets the engine console.
    assert engine["stdin"] is True
    assert engine["tty"] is True
    # `kubectl exec … -c engine -- evengine ctl ko` reads the socket path from the env too.
    assert env_of(engine)["EV_CONTROL_SOCKET"] == "/tmp/evengine.sock"
    assert {"name": "tmp-engine", "mountPath": "/tmp"} in engine["volumeMounts"]


def test_the_cp_id_comes_from_the_pod_ordinal(default_chart: Rendered) -> None:
    for name in ("engine", "monitor"):
        env = container(default_chart, "-cp", name)["env"]
        names = [e["name"] for e in env]
        assert names.index("POD_INDEX") < names.index("EV_CP_ID")
        assert env_of({"env": env})["POD_INDEX"] == {
            "fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}
        }
        assert env_of({"env": env})["EV_CP_ID"] == "CP-$(POD_INDEX)"
        assert flag(container(default_chart, "-cp", name)["args"], "--cp-id") == "$(EV_CP_ID)"


def test_each_cp_has_a_settings_file_with_its_location_and_price(
    rendered_variants: dict[str, Rendered],
) -> None:
    chart = rendered_variants["every-option"]  # five CPs, three sites
    engine = container(chart, "-cp", "engine")
    assert flag(engine["args"], "--config") == "/etc/evcharging/cp/$(EV_CP_ID).yaml"
    mount = next(m for m in engine["volumeMounts"] if m["mountPath"] == "/etc/evcharging/cp")
    files = {
        name: yaml.safe_load(text) for name, text in chart.one("ConfigMap", "-cp")["data"].items()
    }
    assert mount["name"] == "cp-config"
    assert files == {
        "CP-0.yaml": {"location": "Alicante, Plaza de los Luceros", "price": 0.3},
        "CP-1.yaml": {"location": "Alicante, Puerto", "price": 0.35},
        "CP-2.yaml": {"location": "San Vicente, Campus"},
        "CP-3.yaml": {"location": "Unknown"},
        "CP-4.yaml": {"location": "Unknown"},
    }


def test_the_monitor_keeps_its_secret_on_a_volume(rendered_variants: dict[str, Rendered]) -> None:
    """The registration token cannot re-key a known CP: a restarted CP pod must find its
    secret again, so by default it lives on a claim per pod; emptyDir is warned about."""
    assert "evctl reset" not in rendered_variants["default"].notes
    assert "evctl reset CP-n" in rendered_variants["every-option"].notes
    for variant, kind in (("default", "claim"), ("every-option", "emptyDir")):
        chart = rendered_variants[variant]
        sts = chart.one("StatefulSet", "-cp")
        monitor = container(chart, "-cp", "monitor")
        assert flag(monitor["args"], "--state-dir") == "/var/lib/evmonitor"
        assert {"name": "state", "mountPath": "/var/lib/evmonitor"} in monitor["volumeMounts"]
        claims = [t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])]
        volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"]["volumes"]}
        if kind == "claim":
            assert claims == ["state"]
            assert "state" not in volumes
        else:
            assert claims == []
            assert "emptyDir" in volumes["state"]


# --- central -------------------------------------------------------------------------


def test_the_central_service_exposes_the_monitor_port_and_http(
    rendered_variants: dict[str, Rendered],
) -> None:
    chart = rendered_variants["default"]
    ports = {p["name"]: p for p in chart.one("Service", "-central")["spec"]["ports"]}
    assert (ports["monitor"]["port"], ports["monitor"]["protocol"]) == (3440, "TCP")
    assert ports["http"]["port"] == 8080
    declared = {
        p["name"]: p["containerPort"] for p in container(chart, "-central", "central")["ports"]
    }
    assert declared == {"monitor": 3440, "http": 8080}
    assert {p["targetPort"] for p in ports.values()} == set(declared)
    kind = {
        p["name"]: p for p in rendered_variants["kind"].one("Service", "-central")["spec"]["ports"]
    }
    assert rendered_variants["kind"].one("Service", "-central")["spec"]["type"] == "NodePort"
    assert (kind["http"]["nodePort"], kind["monitor"]["nodePort"]) == (30080, 30440)


def test_the_central_keeps_its_database_on_a_claim(default_chart: Rendered) -> None:
    sts = default_chart.one("StatefulSet", "-central")
    central = container(default_chart, "-central", "central")
    assert sts["spec"]["replicas"] == 1
    assert flag(central["args"], "--db") == "/data/central.db"
    assert {"name": "data", "mountPath": "/data"} in central["volumeMounts"]
    assert [t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"]] == ["data"]
    assert central["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert central["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_tokens_are_generated_into_a_secret_and_read_from_files(
    rendered_variants: dict[str, Rendered],
) -> None:
    chart = rendered_variants["default"]
    secret = chart.one("Secret", "-central-tokens")
    assert set(secret["data"]) == {
        "operator-token",
        "viewer-token",
        "registration-token",
        "enrollment-token",
    }
    assert all(len(v) >= 40 for v in secret["data"].values())
    central = env_of(container(chart, "-central", "central"))
    monitor = env_of(container(chart, "-cp", "monitor"))
    assert central["EV_OPERATOR_TOKEN_FILE"] == "/etc/evcharging/tokens/operator-token"
    assert central["EV_VIEWER_TOKEN_FILE"] == "/etc/evcharging/tokens/viewer-token"
    assert central["EV_REGISTRATION_TOKEN_FILE"] == "/etc/evcharging/tokens/registration-token"
    assert monitor["EV_REGISTRATION_TOKEN_FILE"] == "/etc/evcharging/tokens/registration-token"
    assert "EV_OPERATOR_TOKEN" not in central and "EV_OPERATOR_TOKEN_FILE" not in monitor
    # drivers enroll themselves with the enrollment token, and see no other token
    driver = env_of(container(chart, "-driver", "driver"))
    assert central["EV_ENROLLMENT_TOKEN_FILE"] == "/etc/evcharging/tokens/enrollment-token"
    assert driver["EV_ENROLLMENT_TOKEN_FILE"] == "/etc/evcharging/enrollment/enrollment-token"
    mounted = chart.one("StatefulSet", "-driver")["spec"]["template"]["spec"]["volumes"]
    enrollment = next(v for v in mounted if v["name"] == "enrollment")
    assert [i["key"] for i in enrollment["secret"]["items"]] == ["enrollment-token"]
    # With an existing Secret the chart makes none and mounts that one.
    other = rendered_variants["every-option"]
    assert other.of_kind("Secret") == []
    volumes = other.one("StatefulSet", "-central")["spec"]["template"]["spec"]["volumes"]
    tokens = next(v for v in volumes if v["name"] == "tokens")
    assert tokens["secret"]["secretName"] == "evcharging-operator-tokens"


def _secret_volume(chart: Rendered, workload: str, volume: str) -> str:
    volumes = chart.one("StatefulSet", workload)["spec"]["template"]["spec"]["volumes"]
    name: str = next(v for v in volumes if v["name"] == volume)["secret"]["secretName"]
    return name


@pytest.mark.parametrize(
    ("variant", "secret"),
    [
        ("default", "evcharging-central-tls"),  # generated by the chart
        ("cert-manager", "evcharging-central-tls"),  # issued by cert-manager
        ("every-option", "evcharging-central-tls"),  # given (central.tls.secretName)
    ],
)
def test_monitor_port_tls_is_wired_end_to_end(
    rendered_variants: dict[str, Rendered], variant: str, secret: str
) -> None:
    chart = rendered_variants[variant]
    central = container(chart, "-central", "central")["args"]
    monitor = container(chart, "-cp", "monitor")["args"]
    assert flag(central, "--tls-cert") == "/etc/evcharging/tls/tls.crt"
    assert "--central-tls" in monitor
    assert flag(monitor, "--central-ca-file") == "/etc/evcharging/central-ca/ca.crt"
    assert flag(monitor, "--central-server-name") == "evcharging-central"
    assert _secret_volume(chart, "-central", "tls") == secret
    assert _secret_volume(chart, "-cp", "central-ca") == secret


def test_the_chart_generates_a_ca_and_a_certificate_for_the_central_service(
    default_chart: Rendered,
) -> None:
    from cryptography import x509

    secret = default_chart.one("Secret", "-central-tls")
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    cert.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        "evcharging-central",
        "evcharging-central.evcharging",
        "evcharging-central.evcharging.svc",
        "evcharging-central.evcharging.svc.cluster.local",
    ]
    assert b"PRIVATE KEY" in data["tls.key"]


def test_cert_manager_issues_the_central_certificate_from_a_release_ca(
    rendered_variants: dict[str, Rendered],
) -> None:
    chart = rendered_variants["cert-manager"]
    assert not [s for s in chart.of_kind("Secret") if s["metadata"]["name"].endswith("-tls")]
    issuers = {i["metadata"]["name"]: i["spec"] for i in chart.of_kind("Issuer")}
    assert issuers == {
        "evcharging-central-tls-selfsigned": {"selfSigned": {}},
        "evcharging-central-tls-ca": {"ca": {"secretName": "evcharging-central-tls-ca"}},
    }
    certs = {c["metadata"]["name"]: c["spec"] for c in chart.of_kind("Certificate")}
    assert certs["evcharging-central-tls-ca"]["isCA"] is True
    server = certs["evcharging-central-tls"]
    assert server["secretName"] == "evcharging-central-tls"
    assert server["issuerRef"]["name"] == "evcharging-central-tls-ca"
    assert "evcharging-central.evcharging.svc" in server["dnsNames"]


# --- drivers and the helm test -------------------------------------------------------


def test_a_driver_pod_needs_no_flags_to_exec_into(default_chart: Rendered) -> None:
    driver = container(default_chart, "-driver", "driver")
    env = env_of(driver)
    assert env["EV_ID"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["EV_KAFKA"] == "evcharging-kafka-bootstrap:9093"
    assert env["EV_STATE_DIR"] == "/var/lib/evdriver"
    assert driver["args"] == ["--metrics", "0.0.0.0:9102", "idle"]
    assert "command" not in driver  # the image's entrypoint, evdriver


def test_a_batch_driver_runs_the_batch_then_idles(rendered_variants: dict[str, Rendered]) -> None:
    chart = rendered_variants["every-option"]
    driver = container(chart, "-driver", "driver")
    assert chart.one("ConfigMap", "-driver")["data"] == {"batch.txt": "CP-0\nCP-1\n"}
    assert driver["command"][:2] == ["/bin/sh", "-c"]
    script = driver["command"][2]
    assert 'evdriver "$@" batch /etc/evcharging/driver/batch.txt &' in script
    assert script.rstrip().endswith('exec evdriver "$@" idle')
    assert "trap" in script  # SIGTERM reaches the batch, the pod drains in time
    assert driver["args"] == ["--metrics", "0.0.0.0:9102"]


def test_the_helm_test_pod_runs_one_small_supply(default_chart: Rendered) -> None:
    (pod,) = default_chart.hooks
    assert annotations_of(pod)["helm.sh/hook"] == "test"
    assert pod["spec"]["restartPolicy"] == "Never"
    (supply,) = pod["spec"]["containers"]
    assert supply["image"].startswith("evcharging/evdriver:")
    assert supply["args"] == ["request", "CP-0", "--max-kwh", "0.01"]
    assert env_of(supply)["EV_KAFKA"] == "evcharging-kafka-bootstrap:9093"


# --- Kafka ---------------------------------------------------------------------------


def test_topics_have_the_partitions_of_evproto(default_chart: Rendered) -> None:
    topics = default_chart.of_kind("KafkaTopic")
    cluster = default_chart.one("Kafka", "evcharging")["metadata"]["name"]
    assert {t["spec"]["topicName"]: t["spec"]["partitions"] for t in topics} == {
        t.value: t.partitions for t in Topic
    }
    for topic in topics:
        assert DNS_1123.match(topic["metadata"]["name"])
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == cluster


def test_kafka_runs_in_kraft_mode_from_a_node_pool(default_chart: Rendered) -> None:
    kafka = default_chart.one("Kafka", "evcharging")
    pool = default_chart.one("KafkaNodePool", "kafka")
    assert kafka["apiVersion"] == pool["apiVersion"] == "kafka.strimzi.io/v1"
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert (listener["name"], listener["port"], listener["tls"]) == ("tls", 9093, True)
    assert "topicOperator" in kafka["spec"]["entityOperator"]


def kafka_clients(chart: Rendered) -> dict[str, dict[str, Any]]:
    """Every container that talks to Kafka, by name (the monitor does not)."""
    return {
        f"{obj['metadata']['name']}/{c['name']}": c
        for obj, c in chart.containers()
        if c["name"] != "monitor"
    }


def test_every_kafka_client_gets_the_bootstrap_address(
    rendered_variants: dict[str, Rendered],
) -> None:
    """The plain listener: what the chart smoke run overrides to (the embedded broker)."""
    default_chart = rendered_variants["kafka-plaintext"]
    clients = kafka_clients(default_chart)
    assert sorted(clients) == [
        "evcharging-central/central",
        "evcharging-cp/engine",
        "evcharging-driver/driver",
        "evcharging-ocpp/ocpp",
        "evcharging-test-supply/supply",
    ]
    for c in clients.values():
        assert env_of(c)["EV_KAFKA"] == "evcharging-kafka-bootstrap:9092"
        assert env_of(c)["EV_KAFKA_SECURITY_PROTOCOL"] == "PLAINTEXT"
    assert "EV_KAFKA" not in env_of(container(default_chart, "-cp", "monitor"))
    assert default_chart.of_kind("KafkaUser") == []
    # Strimzi owns the topics.
    assert "--no-create-topics" in container(default_chart, "-central", "central")["args"]


def test_an_external_kafka_replaces_strimzi(rendered_variants: dict[str, Rendered]) -> None:
    chart = rendered_variants["external-kafka"]
    assert [o for o in chart.objects if o["apiVersion"].startswith("kafka.strimzi.io")] == []
    assert "--create-topics" in container(chart, "-central", "central")["args"]
    for c in kafka_clients(chart).values():
        env = env_of(c)
        assert env["EV_KAFKA"] == "kafka-0.example.net:9093,kafka-1.example.net:9093"
        assert env["EV_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["EV_KAFKA_USERNAME"] == {
            "secretKeyRef": {"name": "evcharging-kafka-credentials", "key": "username"}
        }
        assert env["EV_KAFKA_PASSWORD_FILE"] == "/etc/evcharging/kafka/password"
        assert env["EV_KAFKA_CA_FILE"] == "/etc/evcharging/kafka-ca/ca.crt"


def _acl(user: Manifest) -> dict[str, set[str]]:
    granted: dict[str, set[str]] = {}
    for rule in user["spec"]["authorization"]["acls"]:
        for op in rule["operations"]:
            granted.setdefault(op, set()).add(
                f"{rule['resource']['type']}:{rule['resource']['name']}"
            )
    return granted


def test_kafka_auth_gives_each_component_its_own_least_privilege_user(
    rendered_variants: dict[str, Rendered],
) -> None:
    """On by default: SCRAM-SHA-512 over TLS, a KafkaUser per component kind."""
    chart = rendered_variants["default"]
    kafka = chart.one("Kafka", "evcharging")["spec"]["kafka"]
    assert kafka["listeners"][0]["authentication"] == {"type": "scram-sha-512"}
    assert (kafka["listeners"][0]["port"], kafka["listeners"][0]["tls"]) == (9093, True)
    assert kafka["authorization"] == {"type": "simple"}
    users = {u["metadata"]["name"]: _acl(u) for u in chart.of_kind("KafkaUser")}
    assert sorted(users) == [
        "evcharging-central",
        "evcharging-driver",
        "evcharging-engine",
        "evcharging-ocpp",
    ]
    topics = {f"topic:{t.value}" for t in Topic}
    for name, granted in users.items():
        assert set(granted) == {"Read", "Write"}
        assert granted["Write"] <= topics
        groups = granted["Read"] - topics  # its consumer groups
        assert len(groups) == (0 if name == "evcharging-driver" else 1)
    # drivers keep their read positions in their state directory: no group to touch
    assert not any(g.startswith("group:") for g in users["evcharging-driver"]["Read"])
    assert "group:evengine." in users["evcharging-engine"]["Read"]
    assert "group:evcentral" in users["evcharging-central"]["Read"]
    # drivers: requests (and dead letters) out; only the driver topics and the CP states in
    assert users["evcharging-driver"]["Write"] == {
        "topic:ev.supply.requests",
        "topic:ev.deadletter",
    }
    assert users["evcharging-driver"]["Read"] == {
        "topic:ev.supply.responses",
        "topic:ev.driver.updates",
        "topic:ev.cp.state",
    }
    # A driver cannot steer charging points nor forge telemetry.
    assert "topic:ev.directives" not in users["evcharging-driver"]["Write"]
    assert "topic:ev.supply.telemetry" not in users["evcharging-driver"]["Write"]
    # The OCPP gateway is its connectors' engine: no more.
    assert users["evcharging-ocpp"] == users["evcharging-engine"] | {
        "Read": {*users["evcharging-engine"]["Read"] - {"group:evengine."}, "group:evocpp"}
    }
    assert "topic:ev.driver.updates" not in users["evcharging-engine"]["Read"]
    for name, c in kafka_clients(chart).items():
        user = (
            "evcharging-driver"
            if name.endswith(("/driver", "/supply"))
            else ("evcharging-" + name.split("/")[1])
        )
        env = env_of(c)
        assert env["EV_KAFKA"] == "evcharging-kafka-bootstrap:9093"
        assert env["EV_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
        assert env["EV_KAFKA_USERNAME"] == user
        assert env["EV_KAFKA_PASSWORD_FILE"] == "/etc/evcharging/kafka/password"
        assert env["EV_KAFKA_CA_FILE"] == "/etc/evcharging/kafka-ca/ca.crt"
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/etc/evcharging/kafka", "/etc/evcharging/kafka-ca"} <= mounts
    pod_volumes = [
        v
        for _obj, spec in chart.pod_specs()
        for v in spec["volumes"]
        if v["name"] == "kafka-password"
    ]
    assert {v["secret"]["secretName"] for v in pod_volumes} == set(users)


# --- every pod and container ---------------------------------------------------------


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_pod_is_locked_down(rendered_variants: dict[str, Rendered], variant: str) -> None:
    for obj, spec in rendered_variants[variant].pod_specs():
        where = obj["metadata"]["name"]
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] == 10001, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        assert spec["terminationGracePeriodSeconds"] == 15, where


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_container_has_probes_limits_and_a_safe_context(
    rendered_variants: dict[str, Rendered], variant: str
) -> None:
    chart = rendered_variants[variant]
    hooks = {id(h) for h in chart.hooks}
    for obj, c in chart.containers():
        where = f"{obj['metadata']['name']}/{c['name']}"
        context = c["securityContext"]
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["runAsNonRoot"] is True, where
        assert context["capabilities"] == {"drop": ["ALL"]}, where
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
        assert "memory" in c["resources"]["limits"], where
        if id(obj) not in hooks:  # the test pod runs to completion
            for probe in ("livenessProbe", "readinessProbe"):
                assert c[probe]["httpGet"]["port"] in {p["name"] for p in c["ports"]}, where


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_container_has_a_writable_tmp(
    rendered_variants: dict[str, Rendered], variant: str
) -> None:
    for obj, spec in rendered_variants[variant].pod_specs():
        volumes = {v["name"]: v for v in spec["volumes"]}
        for c in spec["containers"]:
            tmp = next(m["name"] for m in c["volumeMounts"] if m["mountPath"] == "/tmp")
            assert "emptyDir" in volumes[tmp], f"{obj['metadata']['name']}/{c['name']}"


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_selectors_use_only_name_instance_and_component(
    rendered_variants: dict[str, Rendered], variant: str
) -> None:
    for obj in rendered_variants[variant].objects:
        spec = obj.get("spec", {})
        selector = spec.get("selector")
        if selector is None:
            continue
        if obj["kind"] == "PodMonitor" and obj["metadata"]["name"].endswith("-kafka"):
            continue  # selects Strimzi's pods, by Strimzi's labels
        if obj["kind"] == "Service":
            keys = set(selector)
        else:
            keys = set(selector.get("matchLabels", {})) | {
                e["key"] for e in selector.get("matchExpressions", [])
            }
        assert keys and keys <= SELECTOR_KEYS, f"{obj['kind']}/{obj['metadata']['name']}: {keys}"
        if obj["kind"] == "StatefulSet":
            labels = spec["template"]["metadata"]["labels"]
            assert selector["matchLabels"].items() <= labels.items()


def test_pods_that_mount_config_roll_when_it_changes(
    rendered_variants: dict[str, Rendered],
) -> None:
    default = rendered_variants["default"]
    moved = render({"chargingPoints": {"sites": [{"location": "Elche", "price": 0.4}]}})

    def checksum(chart: Rendered) -> str:
        pod = chart.one("StatefulSet", "-cp")["spec"]["template"]["metadata"]
        return str(pod["annotations"]["checksum/config"])

    for obj, spec in default.pod_specs():
        if any("configMap" in v for v in spec["volumes"]):
            assert "checksum/config" in obj["spec"]["template"]["metadata"]["annotations"]
    assert checksum(moved) != checksum(default)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_images_carry_a_version_tag(rendered_variants: dict[str, Rendered], variant: str) -> None:
    for _obj, c in rendered_variants[variant].containers():
        repository, _, tag = c["image"].rpartition(":")
        assert repository.startswith("evcharging/ev")
        assert tag and tag != "latest"


def test_one_tag_versions_every_image() -> None:
    tagged = render({"global": {"image": {"tag": "1.2.3"}}})
    assert {c["image"].rpartition(":")[2] for _o, c in tagged.containers()} == {"1.2.3"}


# --- monitoring ----------------------------------------------------------------------


def test_monitors_render_only_where_prometheus_operator_runs(
    rendered_variants: dict[str, Rendered],
) -> None:
    with_api, without = (
        rendered_variants["kind"],
        rendered_variants["kind-without-prometheus-operator"],
    )
    monitor_kinds = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}
    assert {o["kind"] for o in with_api.objects} >= monitor_kinds
    assert not {o["kind"] for o in without.objects} & monitor_kinds
    assert "no prometheus-operator API" in without.notes
    assert without.one("ConfigMap", "-dashboard")  # a plain ConfigMap needs no API
    assert not {o["kind"] for o in rendered_variants["default"].objects} & monitor_kinds
    for kind in monitor_kinds:
        assert with_api.of_kind(kind)[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_monitors_scrape_ports_that_exist(rendered_variants: dict[str, Rendered]) -> None:
    chart = rendered_variants["monitoring"]
    service_ports = {p["name"] for p in chart.one("Service", "-central")["spec"]["ports"]}
    (service_monitor,) = chart.of_kind("ServiceMonitor")
    assert {e["port"] for e in service_monitor["spec"]["endpoints"]} <= service_ports
    pod_ports = {
        p["name"]: p["containerPort"]
        for obj, c in chart.containers()
        if obj["metadata"]["name"].endswith(("-cp", "-driver"))
        for p in c["ports"]
    }
    (pod_monitor, strimzi) = sorted(
        chart.of_kind("PodMonitor"), key=lambda m: m["metadata"]["name"].endswith("-kafka")
    )
    (endpoint,) = strimzi["spec"]["podMetricsEndpoints"]
    assert endpoint["port"] == "tcp-prometheus"  # Strimzi's metrics port (brokers, exporter)
    (kafka,) = chart.of_kind("Kafka")
    assert strimzi["spec"]["selector"]["matchLabels"] == {
        "strimzi.io/cluster": kafka["metadata"]["name"],
        "strimzi.io/kind": "Kafka",
    }
    assert kafka["spec"]["kafkaExporter"]["topicRegex"] == "ev\\..*"
    source = kafka["spec"]["kafka"]["metricsConfig"]["valueFrom"]["configMapKeyRef"]
    rules = yaml.safe_load(chart.one("ConfigMap", "-kafka-metrics")["data"][source["key"]])
    assert source["name"].endswith("-kafka-metrics") and rules["lowercaseOutputName"] is True
    default = rendered_variants["default"]
    assert "metricsConfig" not in default.of_kind("Kafka")[0]["spec"]["kafka"]  # monitoring off
    scraped = {e["port"] for e in pod_monitor["spec"]["podMetricsEndpoints"]}
    assert {pod_ports[p] for p in scraped} == {9100, 9101, 9102}


def test_the_dashboard_is_grafana_json_on_our_metrics(
    rendered_variants: dict[str, Rendered],
) -> None:
    config_map = rendered_variants["monitoring"].one("ConfigMap", "-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["evcharging.json"])
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs and all(
        re.search(r"evcharging_(central|engine|monitor|driver|ocpp)_|kafka_", e) for e in exprs
    )
    used = set(re.findall(r"evcharging_central_[a-z_]+", " ".join(exprs)))
    assert {
        "evcharging_central_sessions_started_total",
        "evcharging_central_sessions_completed_total",
        "evcharging_central_sessions_aborted_total",
        "evcharging_central_energy_delivered_kwh_total",
        "evcharging_central_revenue_eur_total",
        "evcharging_central_authorization_latency_seconds_bucket",
        "evcharging_central_cp_state",
    } <= used


# --- kind ----------------------------------------------------------------------------


def test_kind_maps_the_node_ports_the_values_use() -> None:
    kind = yaml.safe_load((REPO / "k8s" / "kind-config.yaml").read_text())
    mapped = {
        m["containerPort"]: m["hostPort"] for n in kind["nodes"] for m in n["extraPortMappings"]
    }
    values = yaml.safe_load(KIND_VALUES.read_text())["central"]["service"]["nodePorts"]
    stack = yaml.safe_load((REPO / "k8s" / "kube-prometheus-stack-values.yaml").read_text())
    assert mapped[values["http"]] == 8080
    assert mapped[values["monitor"]] == 3440
    assert mapped[stack["grafana"]["service"]["nodePort"]] == 3000
    assert mapped[stack["prometheus"]["service"]["nodePort"]] == 9090


def test_the_notes_tell_how_to_use_the_release(default_chart: Rendered) -> None:
    notes = default_chart.notes
    assert "port-forward svc/evcharging-central 8080:8080" in notes
    assert "jsonpath='{.data.operator-token}'" in notes
    assert "exec -it evcharging-driver-0 -- evdriver request CP-0" in notes
    assert "exec evcharging-cp-1 -c engine -- evengine ctl ko" in notes
    assert "helm -n evcharging test evcharging" in notes


def test_the_alerting_rules_pass_promtool(
    rendered_variants: dict[str, Rendered], tmp_path: Path
) -> None:
    promtool = require_tool("promtool", "to check the alerting rules (Debian package prometheus)")
    (rule,) = rendered_variants["monitoring"].of_kind("PrometheusRule")
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule["spec"]))
    checked = subprocess.run(
        [promtool, "check", "rules", str(rules)], check=False, capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# --- the OCPP gateway ------------------------------------------------------------------


def test_the_ocpp_gateway_is_the_central_system_for_stations(default_chart: Rendered) -> None:
    deployment = default_chart.one("Deployment", "-ocpp")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one owner of gateway.db
    gateway = deployment["spec"]["template"]["spec"]["containers"][0]
    args = gateway["args"]
    assert flag(args, "--enrollment") == "closed"  # unknown stations are refused by default
    assert flag(args, "--central") == "evcharging-central:3440"
    assert flag(args, "--state-dir") == "/data"
    assert "--tls-cert" not in args
    assert (
        env_of(gateway)["EV_REGISTRATION_TOKEN_FILE"] == "/etc/evcharging/tokens/registration-token"
    )
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    claim = default_chart.one("PersistentVolumeClaim", "-ocpp")
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    service = default_chart.one("Service", "-ocpp")
    assert service["spec"]["type"] == "ClusterIP"
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {
        "ocpp": 9000,
        "metrics": 9103,
    }
    assert not default_chart.of_kind("Ingress")


def test_the_ocpp_gateway_can_serve_wss_through_a_node_port_and_an_ingress(
    rendered_variants: dict[str, Rendered],
) -> None:
    chart = rendered_variants["every-option"]
    deployment = chart.one("Deployment", "-ocpp")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert flag(args, "--enrollment") == "pending"
    assert flag(args, "--tls-cert") == "/etc/evcharging/ocpp-tls/tls.crt"
    assert "--central-tls" in args  # the central's monitor port is TLS in this variant
    [port] = [p for p in chart.one("Service", "-ocpp")["spec"]["ports"] if p["name"] == "ocpp"]
    assert port["nodePort"] == 30900
    ingress = chart.one("Ingress", "-ocpp")
    [rule] = ingress["spec"]["rules"]
    assert rule["host"] == "ocpp.example.net"
    assert rule["http"]["paths"][0]["path"] == "/ocpp"
    assert not chart.of_kind("PersistentVolumeClaim") or all(
        not c["metadata"]["name"].endswith("-ocpp") for c in chart.of_kind("PersistentVolumeClaim")
    )


def test_the_ocpp_gateway_can_be_left_out(default_chart: Rendered) -> None:
    chart = render({"ocpp": {"enabled": False}})
    assert not [o for o in chart.objects if o["metadata"]["name"].endswith("-ocpp")]
    assert default_chart.one("Deployment", "-ocpp")


# --- network policies ------------------------------------------------------------------


def _policies(chart: Rendered) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p["spec"] for p in chart.of_kind("NetworkPolicy")}


def _selects(spec: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = spec["podSelector"]
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []))


def _pod_labels(chart: Rendered) -> dict[str, dict[str, str]]:
    found = {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in chart.of_kind("StatefulSet")
    }
    found |= {
        o["metadata"]["name"]: o["spec"]["template"]["metadata"]["labels"]
        for o in chart.of_kind("Deployment")
    }
    found |= {h["metadata"]["name"]: h["metadata"]["labels"] for h in chart.hooks}
    return found


def test_every_pod_of_the_release_is_denied_by_default(default_chart: Rendered) -> None:
    deny = _policies(default_chart)["evcharging-default-deny"]
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny and "egress" not in deny
    for name, labels in _pod_labels(default_chart).items():
        assert _selects(deny, labels), name


def test_the_allowed_flows_are_exactly_the_ones_the_system_needs(default_chart: Rendered) -> None:
    policies = _policies(default_chart)
    pods = _pod_labels(default_chart)
    # everyone: DNS, and Kafka's TLS listener on Strimzi's broker pods only
    common = policies["evcharging-dns-and-kafka"]
    assert all(_selects(common, labels) for labels in pods.values())
    dns, kafka = common["egress"]
    assert {p["port"] for p in dns["ports"]} == {53} and "to" not in dns
    assert kafka["ports"] == [{"port": 9093, "protocol": "TCP"}]
    assert kafka["to"] == [
        {
            "podSelector": {
                "matchLabels": {"strimzi.io/cluster": "evcharging", "strimzi.io/kind": "Kafka"}
            }
        }
    ]
    # CP pods: out only to the central's monitor port; in only Prometheus, on metrics
    cp = policies["evcharging-cp"]
    assert _selects(cp, pods["evcharging-cp"]) and not _selects(cp, pods["evcharging-driver"])
    (to_central,) = cp["egress"]
    assert to_central["ports"] == [{"port": 3440, "protocol": "TCP"}]
    assert to_central["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "central"
    )
    (scrape,) = cp["ingress"]
    assert {p["port"] for p in scrape["ports"]} == {"metrics-engine", "metrics-monitor"}
    assert scrape["from"][0]["podSelector"] == {
        "matchLabels": {"app.kubernetes.io/name": "prometheus"}
    }
    # drivers: no egress beyond DNS and Kafka; in only Prometheus
    driver = policies["evcharging-driver"]
    assert driver["policyTypes"] == ["Ingress"]
    assert [p["port"] for p in driver["ingress"][0]["ports"]] == ["metrics"]
    # the central: monitor port from CP pods and the OCPP gateway; HTTP from Prometheus
    monitor_port, http = policies["evcharging-central"]["ingress"]
    assert [
        p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in monitor_port["from"]
    ] == ["cp", "ocpp"]
    assert [p["podSelector"] for p in http["from"]] == [
        {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    ]
    # Kafka's listener (Strimzi writes its policy) admits only the release's clients
    (listener,) = default_chart.one("Kafka", "evcharging")["spec"]["kafka"]["listeners"]
    (peer,) = listener["networkPolicyPeers"]
    assert peer["podSelector"]["matchExpressions"][1]["values"] == [
        "central",
        "cp",
        "driver",
        "test",
        "ocpp",
    ]


def test_the_dashboard_is_reachable_where_its_service_or_ingress_exposes_it(
    rendered_variants: dict[str, Rendered],
) -> None:
    kind = _policies(rendered_variants["kind"])["evcharging-central"]["ingress"]
    assert all("from" not in rule for rule in kind)  # NodePort: from anywhere
    ingress = _policies(rendered_variants["minikube-with-ingress"])["evcharging-central"]
    _monitor, http = ingress["ingress"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}
    } in http["from"]
    external = _policies(rendered_variants["external-kafka"])["evcharging-dns-and-kafka"]
    _dns, kafka = external["egress"]
    assert "to" not in kafka and kafka["ports"] == [{"port": 9093, "protocol": "TCP"}]
