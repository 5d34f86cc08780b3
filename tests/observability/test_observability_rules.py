"""The alerting rules as the chart renders them: promtool accepts them, each alert
fires when (and only when) it should, the thresholds are the values', and the rule
is optional (off by default)."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from evchart_render import MONITORING_API, render
from obs_chart import ChartRelease, render_monitoring, write_rules
from obs_queries import alert_expressions
from obs_tools import prometheus_tool

NS = 'namespace="evcharging"'
LATENCY = "evcharging_central_authorization_latency_seconds_bucket"
DEAD_LETTERS = "evcharging_central_kafka_dead_letters_total"
LAG = "evcharging_central_kafka_consumer_lag_messages"
LOOP_LAG = "evcharging_central_event_loop_lag_seconds_bucket"
RUNBOOKS = Path(__file__).resolve().parents[2] / "docs" / "runbooks.md"
RUNBOOKS_URL = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "charts/evcharging/values.yaml").read_text()
)["monitoring"]["prometheusRule"]["runbookUrl"]


@pytest.fixture
def promtool() -> str:
    return prometheus_tool("promtool")


def run_promtool(promtool: str, *args: str) -> None:
    done = subprocess.run(
        [promtool, *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def selector(metric: str, **labels: str) -> str:
    """A series of the release's namespace, in promtool's input notation."""
    pairs = ", ".join([NS, *(f'{k}="{v}"' for k, v in labels.items())])
    return f"{metric}{{{pairs}}}"


def without_annotations(rules: dict[str, Any]) -> dict[str, Any]:
    """The rules minus their annotations: the firing cases check labels and timing."""
    bare = copy.deepcopy(rules)
    for group in bare["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    return bare


def case(
    alert: str, series: dict[str, str], quiet_at: str, firing_at: str, **labels: str
) -> dict[str, Any]:
    """A promtool test group: ``alert`` not firing at ``quiet_at``, firing with ``labels``
    at ``firing_at``, over ``series`` (selector -> promtool's expanding notation)."""
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {"eval_time": quiet_at, "alertname": alert, "exp_alerts": []},
            {"eval_time": firing_at, "alertname": alert, "exp_alerts": [{"exp_labels": labels}]},
        ],
    }


# With the default thresholds of values.yaml (evaluated every minute).
FIRING_CASES = [
    case(
        "EvChargingCentralDown",
        {selector("up", job="evcharging-central"): "1 1 0x10"},
        "1m",
        "5m",
        severity="critical",
        namespace="evcharging",
    ),
    case(
        "EvChargingCentralNotReady",
        {selector("evcharging_central_ready"): "1 0x10"},
        "2m",
        "4m",
        severity="critical",
        namespace="evcharging",
    ),
    case(
        "EvChargingAuthorizationSlow",  # every decision between 2.5 and 5 s: p99 ~ 5 s
        {
            selector(LATENCY, le="2.5"): "0x30",
            selector(LATENCY, le="5"): "0+10x30",
            selector(LATENCY, le="+Inf"): "0+10x30",
        },
        "8m",
        "15m",
        severity="warning",
        namespace="evcharging",
    ),
    case(
        "EvChargingCentralSaturated",  # every 250 ms tick from 0.5 to 1 s late: p99 ~ 1 s
        {
            selector(LOOP_LAG, le="0.5"): "0x30",
            selector(LOOP_LAG, le="1"): "0+240x30",
            selector(LOOP_LAG, le="+Inf"): "0+240x30",
        },
        "8m",
        "15m",
        severity="warning",
        namespace="evcharging",
    ),
    case(
        "EvChargingCpBroken",  # CP-3 broken from 1m; CP-4 stopped (orange) never alerts
        {
            selector("evcharging_central_cp_state", cp_id="CP-3"): "0 4x20",
            selector("evcharging_central_cp_state", cp_id="CP-4"): "3x20",
        },
        "9m",
        "12m",
        severity="warning",
        cp_id="CP-3",
        namespace="evcharging",
    ),
    case(
        "EvChargingCpsDisconnected",  # 3 of 4 disconnected from 1m
        {
            selector("evcharging_central_cps", state="DISCONNECTED"): "0 3x20",
            selector("evcharging_central_cps", state="ACTIVE"): "4 1x20",
        },
        "4m",
        "7m",
        severity="warning",
        namespace="evcharging",
    ),
    case(
        "EvChargingDeadLetters",  # one dead letter at 2m; the 10 minute window forgets it
        {selector(DEAD_LETTERS, topic="ev.supply.requests"): "0 0 1x20"},
        "1m",
        "3m",
        severity="warning",
        topic="ev.supply.requests",
        namespace="evcharging",
    ),
    case(
        "EvChargingConsumerLag",
        {selector(LAG, topic="ev.supply.telemetry"): "0 5000x20"},
        "3m",
        "8m",
        severity="warning",
        topic="ev.supply.telemetry",
        namespace="evcharging",
    ),
]


def test_the_rendered_rules_pass_promtool(
    release: ChartRelease, tmp_path: Path, promtool: str
) -> None:
    run_promtool(promtool, "check", "rules", str(write_rules(release.rules, tmp_path / "r.yaml")))


def test_every_alert_fires_when_it_should_and_not_before(
    release: ChartRelease, tmp_path: Path, promtool: str
) -> None:
    assert sorted(c["alert_rule_test"][0]["alertname"] for c in FIRING_CASES) == sorted(
        a.alert for a in alert_expressions(release.rules)
    ), "every alert has a case"
    rules = write_rules(without_annotations(release.rules), tmp_path / "rules.yaml")
    tests = tmp_path / "tests.yaml"
    tests.write_text(
        yaml.safe_dump(
            {"rule_files": [rules.name], "evaluation_interval": "1m", "tests": FIRING_CASES}
        )
    )
    run_promtool(promtool, "test", "rules", str(tests))


def test_the_dead_letter_alert_clears_once_the_window_passes(
    release: ChartRelease, tmp_path: Path, promtool: str
) -> None:
    rules = write_rules(without_annotations(release.rules), tmp_path / "rules.yaml")
    series = selector(DEAD_LETTERS, topic="ev.directives")
    tests = tmp_path / "tests.yaml"
    group = {
        "interval": "1m",
        "input_series": [{"series": series, "values": "0 0 1x20"}],
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": "EvChargingDeadLetters", "exp_alerts": []}
        ],
    }
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "tests": [group]}))
    run_promtool(promtool, "test", "rules", str(tests))


def test_the_annotations_carry_prometheus_templates_through_helm(
    release: ChartRelease, tmp_path: Path, promtool: str
) -> None:
    rules = write_rules(release.rules, tmp_path / "rules.yaml")
    broken = case(
        "EvChargingCpBroken",
        {selector("evcharging_central_cp_state", cp_id="CP-7"): "4x20"},
        "5m",
        "11m",
        severity="warning",
        cp_id="CP-7",
        namespace="evcharging",
    )
    broken["alert_rule_test"][1]["exp_alerts"][0]["exp_annotations"] = {
        "summary": "Charging point CP-7 is broken down",
        "description": "CP-7 has been BROKEN_DOWN (its monitor reports the engine KO or "
        "unreachable) for more than 10m.",
        "runbook_url": f"{RUNBOOKS_URL}#evchargingcpbroken",
    }
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump({"rule_files": [rules.name], "tests": [broken]}))
    run_promtool(promtool, "test", "rules", str(tests))


def test_the_thresholds_come_from_the_values() -> None:
    tuned = render_monitoring(
        {
            "monitoring": {
                "prometheusRule": {
                    "centralDownFor": "30s",
                    "authorizationP99Seconds": 0.75,
                    "authorizationSlowFor": "15m",
                    "loopLagP99Seconds": 0.2,
                    "loopLagFor": "3m",
                    "cpBrokenFor": "3m",
                    "disconnectedRatio": 0.25,
                    "disconnectedFor": "1m",
                    "deadLetters": 5,
                    "deadLettersWindow": "1h",
                    "consumerLagMessages": 250,
                    "consumerLagFor": "20m",
                }
            }
        }
    )
    rules = {r["alert"]: r for g in tuned.rules["groups"] for r in g["rules"]}
    assert rules["EvChargingCentralDown"]["for"] == "30s"
    assert rules["EvChargingCentralNotReady"]["for"] == "30s"
    assert rules["EvChargingAuthorizationSlow"]["expr"].endswith("> 0.75")
    assert rules["EvChargingAuthorizationSlow"]["for"] == "15m"
    assert rules["EvChargingCentralSaturated"]["expr"].endswith("> 0.2")
    assert rules["EvChargingCentralSaturated"]["for"] == "3m"
    assert rules["EvChargingCpBroken"]["for"] == "3m"
    assert rules["EvChargingCpsDisconnected"]["expr"].endswith("> 0.25")
    assert rules["EvChargingCpsDisconnected"]["for"] == "1m"
    assert re.search(r"\[1h\]\)\) > 5$", rules["EvChargingDeadLetters"]["expr"])
    assert rules["EvChargingConsumerLag"]["expr"].endswith("> 250")
    assert rules["EvChargingConsumerLag"]["for"] == "20m"


def test_the_rules_watch_only_their_own_release(release: ChartRelease) -> None:
    for alert in alert_expressions(release.rules):
        selectors = re.findall(r"\b(?:evcharging_\w+|up)\{([^}]*)\}", alert.expr)
        assert selectors, alert.alert
        assert all(NS in s for s in selectors), alert.alert


def test_the_prometheus_rule_is_optional_and_off_by_default() -> None:
    monitoring = {"monitoring": {"enabled": True}}
    assert render(monitoring, api_versions=[MONITORING_API]).of_kind("PrometheusRule") == []
    with_rule = {"monitoring": {"enabled": True, "prometheusRule": {"enabled": True}}}
    assert len(render(with_rule, api_versions=[MONITORING_API]).of_kind("PrometheusRule")) == 1
    assert render(with_rule).of_kind("PrometheusRule") == []  # no prometheus-operator API


def test_every_alert_links_to_its_section_of_the_runbooks(release: ChartRelease) -> None:
    """runbook_url = the published docs/runbooks.md + the alert's heading as fragment."""
    headings = re.findall(r"^## (\w+)$", RUNBOOKS.read_text(), flags=re.MULTILINE)
    alerts = [r for g in release.rules["groups"] for r in g["rules"]]
    assert sorted(headings) == sorted(r["alert"] for r in alerts)
    for rule in alerts:
        url = rule["annotations"]["runbook_url"]
        assert url == f"{RUNBOOKS_URL}#{rule['alert'].lower()}", rule["alert"]
    moved = render_monitoring(
        {"monitoring": {"prometheusRule": {"runbookUrl": "https://docs.example/runbooks"}}}
    )
    (first, *_rest) = (r for g in moved.rules["groups"] for r in g["rules"])
    assert first["annotations"]["runbook_url"].startswith("https://docs.example/runbooks#")
