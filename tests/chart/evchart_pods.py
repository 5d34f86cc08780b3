"""Run the pods of a rendered release as local processes, the way Kubernetes would.

Each container's argv is the image's ENTRYPOINT (or its ``command``) plus its
``args``; its environment is resolved as the kubelet does (downward API,
Secret and ConfigMap keys, ``$(VAR)`` references); its volumes become
directories (ConfigMaps and Secrets written out as files); and every address
is mapped to this machine: a Service's DNS name to 127.0.0.1 and the port the
selected pod got, the Kafka bootstrap to the embedded broker, a pod's own
ports (``0.0.0.0:9100``, ``127.0.0.1:5500``) to free local ports. What starts
here is what the chart would start in a cluster.
"""

from __future__ import annotations

import base64
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evchart_dockerfile import entrypoint_for_image
from evchart_render import Manifest, Rendered
from evproto.kafka import KafkaSettings, ensure_topics
from evstack.broker import free_port
from evstack.localstack import ManagedProcess

_VENV_BIN = Path(sys.executable).parent
_LOCAL_HOSTS = {"0.0.0.0", "127.0.0.1", "localhost", "::", "[::]"}
_ADDRESS = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:]*\]|[A-Za-z0-9][A-Za-z0-9.-]*):(?P<port>[0-9]{1,5})\b"
)
_DNS_NAME = re.compile(r"^[a-z][a-z0-9-]*(\.[a-z0-9-]+)*$")
_FIELD_LABEL = re.compile(r"^metadata\.labels\['(?P<label>[^']+)'\]$")


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: ``$$`` escapes, unknown references stay as they are."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            if text[i + 1] == "$":
                out.append("$")
                i += 2
                continue
            if text[i + 1] == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2 : end]
                    out.append(env.get(name, text[i : end + 1]))
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


@dataclass
class Pod:
    """One pod of the release: identity, template, and its directory on this machine."""

    name: str
    namespace: str
    labels: dict[str, str]
    spec: dict[str, Any]
    claims: list[str]
    root: Path

    def container_ports(self) -> dict[str, int]:
        return {
            p["name"]: p["containerPort"]
            for c in self.spec["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }


@dataclass
class LocalCluster:
    """Maps a rendered release onto this machine; see the module docstring."""

    chart: Rendered
    workdir: Path
    broker_port: int
    pods: dict[str, Pod] = field(default_factory=dict)
    _ports: dict[tuple[str, int], int] = field(default_factory=dict)

    # --- pods ------------------------------------------------------------------------

    def pod(self, kind: str, name: str, ordinal: int = 0) -> Pod:
        """The pod ``ordinal`` of a StatefulSet, or a bare Pod (a helm test hook)."""
        obj = next(o for o in self.chart.of_kind(kind) if o["metadata"]["name"] == name)
        namespace = obj["metadata"].get("namespace", "default")
        if kind == "Pod":
            pod_name, labels, spec = name, dict(obj["metadata"]["labels"]), obj["spec"]
            claims: list[str] = []
        else:
            template = obj["spec"]["template"]
            pod_name = f"{name}-{ordinal}"
            labels = {
                **template["metadata"]["labels"],
                "apps.kubernetes.io/pod-index": str(ordinal),
                "statefulset.kubernetes.io/pod-name": pod_name,
            }
            spec = template["spec"]
            claims = [t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])]
        pod = Pod(pod_name, namespace, labels, spec, claims, self.workdir / pod_name)
        self.pods[pod_name] = pod
        return pod

    def port(self, pod: Pod, container_port: int) -> int:
        """The local port standing for ``container_port`` of ``pod``."""
        key = (pod.name, container_port)
        if key not in self._ports:
            self._ports[key] = free_port()
        return self._ports[key]

    # --- volumes ---------------------------------------------------------------------

    def _object_data(self, kind: str, name: str) -> dict[str, bytes]:
        found = [o for o in self.chart.of_kind(kind) if o["metadata"]["name"] == name]
        assert found, f"the pods mount {kind} {name}, which the release does not create"
        obj = found[0]
        if kind == "Secret":
            data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
            return data | {k: v.encode() for k, v in (obj.get("stringData") or {}).items()}
        return {k: v.encode() for k, v in (obj.get("data") or {}).items()}

    def volumes(self, pod: Pod) -> dict[str, Path]:
        """Volume name -> its directory, created and filled."""
        out: dict[str, Path] = {}
        for volume in pod.spec.get("volumes", []):
            path = pod.root / volume["name"]
            path.mkdir(parents=True, exist_ok=True)
            source = volume.get("configMap") or volume.get("secret")
            if source is not None:
                kind = "ConfigMap" if "configMap" in volume else "Secret"
                data = self._object_data(kind, source.get("name") or source["secretName"])
                items = source.get("items") or [{"key": k, "path": k} for k in data]
                for item in items:
                    (path / item["path"]).write_bytes(data[item["key"]])
            else:
                assert "emptyDir" in volume, f"{pod.name}: volume {volume['name']} type unsupported"
            out[volume["name"]] = path
        for claim in pod.claims:
            out[claim] = pod.root / claim
            out[claim].mkdir(parents=True, exist_ok=True)
        return out

    # --- environment -----------------------------------------------------------------

    def _field(self, pod: Pod, path: str) -> str:
        label = _FIELD_LABEL.match(path)
        if label:
            return pod.labels[label["label"]]
        fields = {
            "metadata.name": pod.name,
            "metadata.namespace": pod.namespace,
            "metadata.uid": str(uuid.uuid4()),  # a new pod each time it is started
            "status.podIP": "127.0.0.1",
            "spec.serviceAccountName": str(pod.spec.get("serviceAccountName", "default")),
        }
        return fields[path]

    def environment(self, pod: Pod, container: dict[str, Any]) -> dict[str, str]:
        env: dict[str, str] = {}
        for entry in container.get("env", []):
            if "value" in entry:
                env[entry["name"]] = expand(str(entry["value"]), env)
                continue
            source = entry["valueFrom"]
            if "fieldRef" in source:
                env[entry["name"]] = self._field(pod, source["fieldRef"]["fieldPath"])
            else:
                kind = "Secret" if "secretKeyRef" in source else "ConfigMap"
                ref = source.get("secretKeyRef") or source["configMapKeyRef"]
                env[entry["name"]] = self._object_data(kind, ref["name"])[ref["key"]].decode()
        return env

    # --- addresses -------------------------------------------------------------------

    def _service_addresses(self) -> dict[tuple[str, int], int]:
        """(DNS name, port) -> local port, for the Services and the Kafka bootstrap."""
        out: dict[tuple[str, int], int] = {}
        for svc in self.chart.of_kind("Service"):
            selector = svc["spec"]["selector"]
            target = next(
                (p for p in self.pods.values() if selector.items() <= p.labels.items()), None
            )
            if target is None:
                continue
            ns = svc["metadata"].get("namespace", "default")
            name = svc["metadata"]["name"]
            for port in svc["spec"]["ports"]:
                target_port = port.get("targetPort", port["port"])
                if isinstance(target_port, str):
                    target_port = target.container_ports()[target_port]
                local = self.port(target, target_port)
                for host in (
                    name,
                    f"{name}.{ns}",
                    f"{name}.{ns}.svc",
                    f"{name}.{ns}.svc.cluster.local",
                ):
                    out[(host, port["port"])] = local
        for kafka in self.chart.of_kind("Kafka"):
            for listener in kafka["spec"]["kafka"]["listeners"]:
                host = f"{kafka['metadata']['name']}-kafka-bootstrap"
                out[(host, listener["port"])] = self.broker_port
        return out

    def localize(self, pod: Pod, text: str, mounts: Mapping[str, Path]) -> str:
        """Paths under mount points -> their directories; addresses -> local ports."""
        if mounts:  # one pass, longest first: /tmp must not rewrite a rewritten path
            pattern = "|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True))
            text = re.sub(
                rf"(?<![\w/])(?:{pattern})(?=/|\W|$)",
                lambda match: str(mounts[match.group(0)]),
                text,
            )
        services = self._service_addresses()

        def local_address(match: re.Match[str]) -> str:
            host, port = match["host"], int(match["port"])
            if host in _LOCAL_HOSTS:
                return f"127.0.0.1:{self.port(pod, port)}"
            if (host, port) in services:
                return f"127.0.0.1:{services[(host, port)]}"
            assert not _DNS_NAME.match(host), (
                f"{pod.name}: {host}:{port} is neither a Service of the release nor Kafka"
            )
            return match.group(0)

        return _ADDRESS.sub(local_address, text)

    # --- processes -------------------------------------------------------------------

    def processes(self, pod: Pod) -> list[ManagedProcess]:
        """One ManagedProcess per container (init containers are not supported)."""
        assert not pod.spec.get("initContainers"), f"{pod.name}: init containers"
        volumes = self.volumes(pod)
        out = []
        for container in pod.spec["containers"]:
            env = self.environment(pod, container)
            argv = [
                expand(a, env)
                for a in container.get("command") or entrypoint_for_image(container["image"])
            ] + [expand(a, env) for a in container.get("args", [])]
            out.append(
                self._process(
                    pod, container, volumes=volumes, argv=argv, env=env, log_name=container["name"]
                )
            )
        return out

    def exec(self, pod: Pod, container_name: str, *command: str) -> ManagedProcess:
        """``kubectl exec <pod> -c <container> -- <command>``: the container's env, no args."""
        container = next(c for c in pod.spec["containers"] if c["name"] == container_name)
        env = self.environment(pod, container)
        name = f"{container_name}-exec-{command[0]}"
        return self._process(
            pod, container, volumes=self.volumes(pod), argv=list(command), env=env, log_name=name
        )

    def _process(
        self,
        pod: Pod,
        container: dict[str, Any],
        *,
        volumes: Mapping[str, Path],
        argv: list[str],
        env: Mapping[str, str],
        log_name: str,
    ) -> ManagedProcess:
        mounts = {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])}
        argv = [self.localize(pod, a, mounts) for a in argv]
        argv[0] = _executable(argv[0])
        local_env = {k: self.localize(pod, v, mounts) for k, v in env.items()}
        local_env |= {
            "PATH": f"{_VENV_BIN}:/usr/bin:/bin",
            "HOME": str(pod.root),
            "PYTHONUNBUFFERED": "1",
        }
        log = pod.root / f"{log_name}.log"
        return ManagedProcess(f"{pod.name}/{container['name']}", argv, local_env, log)

    def probe_urls(self, pod: Pod) -> Iterator[tuple[str, str]]:
        """(container/probe, URL) of every httpGet probe."""
        ports = pod.container_ports()
        for container in pod.spec["containers"]:
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = container.get(kind, {}).get("httpGet")
                if probe:
                    port = probe["port"] if isinstance(probe["port"], int) else ports[probe["port"]]
                    yield (
                        f"{pod.name}/{container['name']} {kind}",
                        f"http://127.0.0.1:{self.port(pod, port)}{probe['path']}",
                    )


def _executable(name: str) -> str:
    """A console script of the image resolves to this virtualenv's."""
    if "/" in name:
        return name
    local = _VENV_BIN / name
    assert local.exists(), f"{name} is not installed in {_VENV_BIN} (is the service written?)"
    return str(local)


def kafka_topics(chart: Rendered) -> dict[str, int]:
    """Topic name -> partitions, from the release's KafkaTopic objects."""
    topics: list[Manifest] = chart.of_kind("KafkaTopic")
    return {t["spec"]["topicName"]: t["spec"]["partitions"] for t in topics}


def create_topics_like_strimzi(chart: Rendered, bootstrap: str) -> None:
    """Create the release's KafkaTopics on ``bootstrap``, as Strimzi's Topic Operator would."""
    ensure_topics(KafkaSettings(bootstrap), kafka_topics(chart))
