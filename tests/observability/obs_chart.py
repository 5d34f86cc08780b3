"""The chart's monitoring objects, rendered offline (tests/chart's renderer, Helm's own engine)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from evchart_render import MONITORING_API, NAMESPACE, Rendered, deep_merge, render

__all__ = ["MONITORING_ON", "ChartRelease", "render_monitoring", "write_rules"]

MONITORING_ON = {"monitoring": {"enabled": True, "prometheusRule": {"enabled": True}}}


@dataclass(frozen=True, slots=True)
class ChartRelease:
    """What Prometheus sees of a release: the namespace, names and job labels, the rules."""

    namespace: str
    fullname: str
    central_job: str  # the ServiceMonitor's targets' job: the central Service's name
    pod_job: str  # the PodMonitor's targets' job: <namespace>/<PodMonitor name>
    pod_components: frozenset[str]  # the app.kubernetes.io/component values it scrapes
    rules: dict[str, Any]  # the PrometheusRule's spec


def render_monitoring(values: Mapping[str, Any] | None = None) -> ChartRelease:
    rendered = render(deep_merge(MONITORING_ON, values or {}), api_versions=[MONITORING_API])
    (rule,) = rendered.of_kind("PrometheusRule")
    (pod_monitor,) = (  # the chart's own pods; the other scrapes Strimzi's Kafka pods
        m for m in rendered.of_kind("PodMonitor") if not m["metadata"]["name"].endswith("-kafka")
    )
    return ChartRelease(
        namespace=NAMESPACE,
        fullname=rule["metadata"]["name"],
        central_job=_service_monitor_job(rendered),
        pod_job=f"{NAMESPACE}/{pod_monitor['metadata']['name']}",
        pod_components=_selected_components(pod_monitor),
        rules=rule["spec"],
    )


def _selected_components(monitor: dict[str, Any]) -> frozenset[str]:
    selector = monitor["spec"]["selector"]
    (components,) = (
        e["values"]
        for e in selector.get("matchExpressions", [])
        if e["key"] == "app.kubernetes.io/component" and e["operator"] == "In"
    )
    return frozenset(components)


def _service_monitor_job(rendered: Rendered) -> str:
    """The operator's job label: the selected Service's name, or its ``jobLabel`` label."""
    (monitor,) = rendered.of_kind("ServiceMonitor")
    selector = monitor["spec"]["selector"]["matchLabels"]
    (service,) = (
        s
        for s in rendered.of_kind("Service")
        if selector.items() <= s["metadata"]["labels"].items()
    )
    job_label = monitor["spec"].get("jobLabel")
    name: str = (
        service["metadata"]["labels"][job_label] if job_label else service["metadata"]["name"]
    )
    return name


def write_rules(rules: Mapping[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(dict(rules), sort_keys=False))
    return path
