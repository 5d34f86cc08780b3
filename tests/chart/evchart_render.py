"""Render and lint the evcharging chart offline with Helm's own engine (helm-python-sdk).

No cluster, no ``helm`` binary: ``helm_python`` embeds Helm's Go SDK. The SDK's
``Chart.render`` does not expose ``api_versions``, so :func:`render` calls the
native render with the options Helm's ``--api-versions`` / ``--kube-version`` set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "evcharging"
KIND_VALUES = REPO / "k8s" / "values-kind.yaml"
MINIKUBE_VALUES = REPO / "k8s" / "values-minikube.yaml"
RELEASE = "evcharging"
NAMESPACE = "evcharging"
# The Kubernetes version the manifests are rendered and validated for (kind's node image).
KUBE_VERSION = "1.35.0"
MONITORING_API = "monitoring.coreos.com/v1"
# The Strimzi operator's API: the chart refuses to render its Kafka without it.
STRIMZI_API = "kafka.strimzi.io/v1"

Manifest = dict[str, Any]


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Merge like successive ``-f`` files: maps merge, everything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def values_from(
    files: Iterable[Path] = (), overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        values = deep_merge(values, yaml.safe_load(path.read_text()) or {})
    return deep_merge(values, overrides or {})


@dataclass(frozen=True)
class Rendered:
    """The chart's output: Kubernetes objects and the NOTES text."""

    objects: list[Manifest]
    notes: str

    def of_kind(self, kind: str) -> list[Manifest]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name_suffix: str) -> Manifest:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"].endswith(name_suffix)]
        assert len(found) == 1, f"expected one {kind} named *{name_suffix}, found {len(found)}"
        return found[0]

    @property
    def hooks(self) -> list[Manifest]:
        return [o for o in self.objects if "helm.sh/hook" in annotations_of(o)]

    def pod_specs(self) -> Iterator[tuple[Manifest, dict[str, Any]]]:
        """(object, pod spec) of every workload, hooks included."""
        for obj in self.objects:
            if obj["kind"] == "Pod":
                yield obj, obj["spec"]
            elif obj["kind"] in {"StatefulSet", "Deployment", "DaemonSet", "Job"}:
                yield obj, obj["spec"]["template"]["spec"]

    def containers(self) -> Iterator[tuple[Manifest, dict[str, Any]]]:
        for obj, spec in self.pod_specs():
            for container in spec.get("initContainers", []) + spec["containers"]:
                yield obj, container


def annotations_of(obj: Manifest) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


# The embedded broker of the local runs of the chart's pods (the smoke run, the
# container tests) has no SCRAM and no TLS listener: those runs override only this,
# everything else (the monitor port's TLS included) runs as rendered by default.
LOCAL_BROKER: dict[str, Any] = {"kafka": {"auth": {"enabled": False}, "tls": {"enabled": False}}}


def render(
    values: Mapping[str, Any] | None = None,
    *,
    api_versions: Iterable[str] = (),
    release: str = RELEASE,
    namespace: str = NAMESPACE,
    strimzi_api: bool = True,
) -> Rendered:
    """Render like ``helm template`` (values schema checked); raises HelmError on failure.

    The cluster is assumed to serve ``api_versions`` and, unless ``strimzi_api`` is
    false, the Strimzi API (as every cluster the chart installs into must).
    """
    options = {
        "name": release,
        "namespace": namespace,
        "kube_version": f"v{KUBE_VERSION}",
        "api_versions": [*api_versions, *([STRIMZI_API] if strimzi_api else [])],
        "is_install": True,
    }
    with helm.Chart.load(CHART_DIR) as chart:
        payload = _native.call_string(
            "helm_render", chart._raw(), json.dumps(dict(values or {})), json.dumps(options)
        )
    files: dict[str, str] = json.loads(payload)
    objects: list[Manifest] = []
    notes = ""
    for name, text in sorted(files.items()):
        if name.endswith("NOTES.txt"):
            notes = text
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return Rendered(objects, notes)


def lint(values: Mapping[str, Any] | None = None) -> list[str]:
    """``helm lint --strict``: the findings of severity warning or error."""
    # `helm lint` has no cluster and no --api-versions: the offline switch.
    offline = deep_merge({"kafka": {"strimziApiCheck": False}}, values or {})
    report = helm.lint(
        CHART_DIR,
        offline,
        strict=True,
        namespace=NAMESPACE,
        kube_version=f"v{KUBE_VERSION}",
    )
    findings = [f"{m['path']}: {m['error']}" for m in report["messages"] if int(m["severity"]) >= 2]
    return findings + list(report.get("errors") or [])
