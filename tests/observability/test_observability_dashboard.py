"""The Grafana dashboard (charts/evcharging/dashboards/evcharging.json), read as Grafana
would: the panels operators asked for, the state map in the operator dashboard's
colours, the data source as a variable, and only metrics the central exports."""

from __future__ import annotations

import re
from typing import Any

import pytest
from evcentral.metrics import CP_STATE_VALUES, CentralMetrics
from evdriver.metrics import DriverMetrics
from evengine.metrics import EngineMetrics
from evmonitor.metrics import MonitorMetrics
from evocpp.metrics import OcppMetrics
from evproto.states import CpState
from obs_chart import ChartRelease
from obs_queries import (
    REPO,
    alert_expressions,
    dashboard_queries,
    load_dashboard,
    metric_names,
    panels,
)
from prometheus_client import CollectorRegistry

# Read from Strimzi's Kafka Exporter and the brokers' JMX exporter (kafka.yaml enables
# both with monitoring), not ours; the JMX names come from our rules (lower-cased):
# metric -> (the rule's name, the MBean name it matches).
EXPORTER_METRICS = ("kafka_consumergroup_lag", "kafka_topic_partition_current_offset")
JMX_METRICS = {
    "kafka_server_brokertopicmetrics_bytesinpersec_total": (
        "kafka_server_brokertopicmetrics_$1_total",
        "BytesInPerSec",
    ),
    "kafka_server_brokertopicmetrics_bytesoutpersec_total": (
        "kafka_server_brokertopicmetrics_$1_total",
        "BytesOutPerSec",
    ),
    "kafka_server_replicamanager_underreplicatedpartitions": (
        "kafka_server_replicamanager_$1",
        "UnderReplicatedPartitions",
    ),
    "kafka_controller_kafkacontroller_offlinepartitionscount": (
        "kafka_controller_kafkacontroller_$1",
        "OfflinePartitionsCount",
    ),
}
JMX_RULES = REPO / "charts/evcharging/templates/kafka-metrics-configmap.yaml"
STYLE_CSS = REPO / "services/central/src/evcentral/http/static/style.css"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# The state map of issue #8: gauge value -> state and the colour of its tile.
STATE_COLOURS = {
    0: ("ACTIVE", "green"),
    1: ("SUPPLYING", "green"),
    2: ("WAITING_FOR_SUPPLY", "green"),
    3: ("STOPPED", "orange"),
    4: ("BROKEN_DOWN", "red"),
    5: ("DISCONNECTED", "grey"),
}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return load_dashboard()


def panel(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    (found,) = (p for p in panels(dashboard) if p["title"] == title)
    return found


def operator_colours() -> dict[str, str]:
    """The operator dashboard's colours: ``--green: #2e9d4a`` in its style sheet."""
    return dict(re.findall(r"--(\w+):\s*(#[0-9a-fA-F]{6})", STYLE_CSS.read_text()))


def exported_sample_names() -> set[str]:
    """Every sample name a component can export (labelled series included, before use)."""
    registries = []
    for metrics in (CentralMetrics, EngineMetrics, MonitorMetrics, DriverMetrics, OcppMetrics):
        registries.append(CollectorRegistry())
        metrics(registries[-1])
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
    return {
        family.name + suffix
        for registry in registries
        for family in registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }


def test_the_data_source_is_a_template_variable(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["namespace"]["datasource"] == DATASOURCE
    for p in panels(dashboard):
        if p["type"] == "row":  # a heading, no queries
            continue
        assert p["datasource"] == DATASOURCE, p["title"]
        assert all(t["datasource"] == DATASOURCE for t in p["targets"]), p["title"]


def test_the_panels_operators_asked_for_are_there(dashboard: dict[str, Any]) -> None:
    titles = {p["title"] for p in panels(dashboard)}
    assert {
        "Charging points per state",
        "CPs broken or disconnected longest",
        "Sessions per minute by outcome",
        "Energy and revenue",
        "Authorization latency",
        "Connected monitors",
        "Errors and dead letters per minute",
        "Kafka consumer lag",
    } <= titles
    latency = panel(dashboard, "Authorization latency")
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p99"]
    assert [t["expr"][:24] for t in latency["targets"]] == [
        "histogram_quantile(0.5, ",
        "histogram_quantile(0.99,",
    ]
    outcomes = " ".join(
        t["expr"] for t in panel(dashboard, "Sessions per minute by outcome")["targets"]
    )
    for counter in ("started", "completed", "aborted"):
        assert f"evcharging_central_sessions_{counter}_total" in outcomes


def test_the_state_counts_are_coloured_like_the_operator_dashboard(
    dashboard: dict[str, Any],
) -> None:
    counts = panel(dashboard, "Charging points per state")
    (target,) = counts["targets"]
    assert target["expr"].startswith("sum by (state) (evcharging_central_cps{")
    css = operator_colours()
    shown = {
        o["matcher"]["options"]: {p["id"]: p["value"] for p in o["properties"]}
        for o in counts["fieldConfig"]["overrides"]
    }
    for value, (name, colour) in STATE_COLOURS.items():
        state = CpState(name)
        assert CP_STATE_VALUES[state] == value and state.colour == colour
        assert shown[name] == {
            "color": {"mode": "fixed", "fixedColor": css[colour]},
            "displayName": state.label,
        }


def test_the_longest_broken_table_names_its_states_in_the_operator_colours(
    dashboard: dict[str, Any],
) -> None:
    table = panel(dashboard, "CPs broken or disconnected longest")
    assert table["type"] == "table"
    since, state = (t["expr"] for t in table["targets"])
    assert since.startswith("topk(20, time() - max by (cp_id) (")
    assert "evcharging_central_cp_state_since_timestamp_seconds" in since
    assert state.endswith(">= 4")  # BROKEN_DOWN and DISCONNECTED
    (override,) = (
        o for o in table["fieldConfig"]["overrides"] if o["matcher"]["options"] == "State"
    )
    (mapping,) = next(p["value"] for p in override["properties"] if p["id"] == "mappings")
    css = operator_colours()
    shown = {int(v): (o["text"], o["color"]) for v, o in mapping["options"].items()}
    assert shown == {
        4: (CpState.BROKEN_DOWN.label, css["red"]),
        5: (CpState.DISCONNECTED.label, css["grey"]),
    }


def test_no_panel_draws_a_series_per_charging_point(dashboard: dict[str, Any]) -> None:
    """At 10,000 CPs a cell or a line per CP is unreadable: per-CP queries are topk()."""
    for query in dashboard_queries(dashboard):
        per_cp = "by (cp_id)" in query.expr or "{{cp_id}}" in query.expr
        bounded = query.expr.startswith("topk(") or query.expr.endswith(">= 4")
        assert not per_cp or bounded, query.name


def test_engines_monitors_drivers_and_kafka_have_a_row(dashboard: dict[str, Any]) -> None:
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == ["Fleet", "Engines", "Monitors", "Drivers", "Kafka and errors", "OCPP gateway"]
    exprs = " ".join(q.expr for q in dashboard_queries(dashboard))
    for component in ("engine", "monitor", "driver"):
        assert f"evcharging_{component}_" in exprs, component


def test_every_metric_read_is_one_a_component_exports(
    dashboard: dict[str, Any], release: ChartRelease
) -> None:
    exported = exported_sample_names()
    exprs = [q.expr for q in dashboard_queries(dashboard)]
    exprs += [a.expr for a in alert_expressions(release.rules)]
    read = set().union(*(metric_names(e) for e in exprs)) - {"up"}
    assert read - exported == set()
    assert "evcharging_central_cp_state" in read


def test_every_query_reads_the_chosen_namespace_only(dashboard: dict[str, Any]) -> None:
    for query in dashboard_queries(dashboard):
        selectors = re.findall(r"\b(?:evcharging|kafka)_\w+(\{[^}]*\})?", query.expr)
        assert selectors, query.name
        assert all('namespace="$namespace"' in s for s in selectors), query.name


def test_the_panels_tile_the_grid(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for p in panels(dashboard):
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']} overlaps {cells.get((x, y))}"
                cells[(x, y)] = p["title"]


def test_the_kafka_row_reads_strimzis_metrics(dashboard: dict[str, Any]) -> None:
    exprs = " ".join(q.expr for q in dashboard_queries(dashboard))
    rules = JMX_RULES.read_text()
    for metric in (*EXPORTER_METRICS, *JMX_METRICS):
        assert metric in exprs, metric
    for metric, (name, mbean) in JMX_METRICS.items():
        assert f"name: {name}" in rules and mbean in rules, metric
