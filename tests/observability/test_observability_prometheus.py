"""A real Prometheus scrapes the running system: every target is up, and every query
of the Grafana dashboard and of the alerting rules returns data (no empty panel, no
misspelt metric or label)."""

from __future__ import annotations

import pytest
from evstack.waiting import wait_until
from obs_chart import ChartRelease, render_monitoring
from obs_prometheus import has_finite_sample
from obs_queries import (
    GRAFANA_DEFAULTS,
    AlertExpr,
    PanelQuery,
    alert_expressions,
    dashboard_queries,
    left_hand_side,
    load_dashboard,
    substitute,
    variable_queries,
)
from obs_system import Observed

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DASHBOARD = load_dashboard()
PANEL_QUERIES = dashboard_queries(DASHBOARD)
ALERTS = alert_expressions(render_monitoring().rules)
_SCRAPED_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def scraped(observed: Observed) -> Observed:
    """Prometheus has every target up and has seen the sessions of the scenario."""
    prometheus = observed.prometheus

    def every_target_up() -> bool:
        targets = prometheus.active_targets()
        return len(targets) == len(observed.system.endpoints) and all(
            t["health"] == "up" for t in targets
        )

    wait_until(every_target_up, _SCRAPED_TIMEOUT_S, "every target scraped and up")
    wait_until(
        lambda: prometheus.query(
            "evcharging_central_sessions_completed_total >= 1 and on() "
            'evcharging_engine_supplying{pod="evcharging-cp-1"} == 1 and on() '
            "sum(evcharging_ocpp_call_latency_seconds_count) >= 2"
        ),
        _SCRAPED_TIMEOUT_S,
        "Prometheus has seen the completed and the running session, the station's two boots",
    )
    return observed


def grafana_values(release: ChartRelease) -> dict[str, str]:
    return {**GRAFANA_DEFAULTS, "namespace": release.namespace}


def test_every_component_is_a_target_that_is_up(scraped: Observed, release: ChartRelease) -> None:
    targets = scraped.prometheus.active_targets()
    by_container = sorted(t["labels"]["container"] for t in targets)
    assert by_container == [
        "central", "driver", "engine", "engine", "monitor", "monitor", "ocpp",
    ]  # fmt: skip
    assert {t["labels"]["job"] for t in targets} == {release.central_job, release.pod_job}
    assert [t["lastError"] for t in targets if t["health"] != "up"] == []


# Panels that list what is wrong: empty in the healthy system these tests watch until
# test_the_longest_broken_table_lists_a_broken_cp (at the end) breaks a CP.
EMPTY_WHEN_HEALTHY = {"CPs broken or disconnected longest"}
# Panels on Strimzi's metrics (the Kafka Exporter and the brokers' JMX exporter),
# which the local system (embedded broker) lacks: Prometheus must accept their
# queries; kind with MONITORING=1 shows their data.
NEEDS_STRIMZI_METRICS = {
    "Consumer group lag (Kafka Exporter)",
    "Records written per second by topic (Kafka Exporter)",
    "Broker bytes in and out per second (Kafka brokers)",
    "Partitions under-replicated or offline (Kafka brokers)",
}


@pytest.mark.parametrize("query", PANEL_QUERIES, ids=[q.name for q in PANEL_QUERIES])
def test_every_dashboard_query_returns_data(
    scraped: Observed, release: ChartRelease, query: PanelQuery
) -> None:
    expr = substitute(query.expr, grafana_values(release))
    if query.panel in NEEDS_STRIMZI_METRICS:
        scraped.prometheus.query_range(expr)  # a bad query raises
        return
    if query.panel in EMPTY_WHEN_HEALTHY:
        assert scraped.prometheus.query_range(expr) == [], f"a healthy system listed: {expr}"
        return
    # What a panel shows over the time range: at least one real value in it.
    result = scraped.prometheus.query_range(expr)
    assert result, f"no series: {expr}"
    assert has_finite_sample(result), f"only NaN: {expr}"


def test_the_namespace_variable_finds_the_release(scraped: Observed, release: ChartRelease) -> None:
    variables = variable_queries(DASHBOARD)
    assert [v.variable for v in variables] == ["namespace"]
    for variable in variables:
        values = scraped.prometheus.label_values(variable.label, variable.metric)
        assert values == [release.namespace]


@pytest.mark.parametrize("alert", ALERTS, ids=[a.alert for a in ALERTS])
def test_every_alert_expression_without_its_threshold_returns_data(
    scraped: Observed, alert: AlertExpr
) -> None:
    expr = left_hand_side(alert.expr)
    result = scraped.prometheus.query_range(expr)
    assert result, f"no series: {expr}"
    assert has_finite_sample(result), f"only NaN: {expr}"


def test_prometheus_evaluates_every_rule_without_error(scraped: Observed) -> None:
    prometheus = scraped.prometheus
    wait_until(
        lambda: not [r for r in prometheus.rules() if r["lastEvaluation"].startswith("0001-")],
        _SCRAPED_TIMEOUT_S,
        "every rule evaluated once",
    )
    rules = prometheus.rules()
    assert sorted(r["name"] for r in rules) == sorted(a.alert for a in ALERTS)
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
    # A healthy system: the central is up and ready, no CP broken or disconnected.
    quiet = {
        "EvChargingCentralDown",
        "EvChargingCentralNotReady",
        "EvChargingCpBroken",
        "EvChargingCpsDisconnected",
    }
    assert [r["name"] for r in rules if r["name"] in quiet and r["state"] != "inactive"] == []


def test_the_longest_broken_table_lists_a_broken_cp(
    scraped: Observed, release: ChartRelease
) -> None:
    """Last in this module: CP-0's engine goes KO, the table names it with how long."""
    since, state = (
        substitute(q.expr, grafana_values(release))
        for q in PANEL_QUERIES
        if q.panel == "CPs broken or disconnected longest"
    )
    system = scraped.system
    system.ctl("CP-0", "ko")
    try:
        rows = wait_until(
            lambda: scraped.prometheus.query(since),
            _SCRAPED_TIMEOUT_S,
            "CP-0 in the broken-longest table",
        )
        assert [row["metric"]["cp_id"] for row in rows] == ["CP-0"]
        assert float(rows[0]["value"][1]) >= 0
        (broken,) = scraped.prometheus.query(state)
        assert broken["metric"]["cp_id"] == "CP-0" and broken["value"][1] == "4"
    finally:
        system.ctl("CP-0", "ok")
    wait_until(lambda: not scraped.prometheus.query(since), _SCRAPED_TIMEOUT_S, "CP-0 fixed")
