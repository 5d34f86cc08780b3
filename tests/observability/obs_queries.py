"""The PromQL the dashboard and the alerting rules run, taken from the chart's files.

The dashboard JSON and the rendered PrometheusRule are the single source: the
tests evaluate exactly these expressions, with Grafana's variables replaced by
what Grafana would send.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DASHBOARD",
    "GRAFANA_DEFAULTS",
    "AlertExpr",
    "LabelValuesQuery",
    "PanelQuery",
    "alert_expressions",
    "dashboard_queries",
    "left_hand_side",
    "load_dashboard",
    "metric_names",
    "panels",
    "substitute",
    "variable_queries",
]

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "charts" / "evcharging" / "dashboards" / "evcharging.json"

# What Grafana puts in for its built-in variables (scrape interval 15 s: $__rate_interval
# is 4 x 15 s = 1m); the dashboard's own variables are added by the caller.
GRAFANA_DEFAULTS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")
_LABEL_VALUES = re.compile(r"^label_values\(\s*(?P<metric>[^,]+?)\s*,\s*(?P<label>\w+)\s*\)$")
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_METRIC = re.compile(r"\b(evcharging_[a-z0-9_]+|up)\b")


@dataclass(frozen=True, slots=True)
class PanelQuery:
    panel: str
    ref_id: str
    expr: str

    @property
    def name(self) -> str:
        return f"{self.panel} [{self.ref_id}]"


@dataclass(frozen=True, slots=True)
class LabelValuesQuery:
    variable: str
    metric: str
    label: str


@dataclass(frozen=True, slots=True)
class AlertExpr:
    alert: str
    expr: str


def load_dashboard(path: Path = DASHBOARD) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those folded into rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(dashboard: Mapping[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(panel["title"], target["refId"], target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if not target.get("hide")
    ]


def variable_queries(dashboard: Mapping[str, Any]) -> list[LabelValuesQuery]:
    """The ``label_values(metric, label)`` query variables."""
    found = []
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text.strip())
        if match is None:
            raise ValueError(f"variable {variable['name']}: unsupported query {text!r}")
        found.append(LabelValuesQuery(variable["name"], match["metric"], match["label"]))
    return found


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """``$name``, ``${name}``, ``${name:format}`` and ``[[name]]`` replaced; unknown ones fail."""

    def replace(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group)
        if name not in values:
            raise KeyError(f"no value for the dashboard variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def alert_expressions(rules_spec: Mapping[str, Any]) -> list[AlertExpr]:
    return [
        AlertExpr(rule["alert"], str(rule["expr"]))
        for group in rules_spec["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def left_hand_side(expr: str) -> str:
    """The expression without its threshold: ``A > 3`` gives ``A``; ``absent(A)`` gives ``A``.

    What must return data on a healthy system for the alert to be able to fire.
    A comparison inside parentheses, brackets, braces or quotes is not the threshold.
    """
    text = expr.strip()
    inner = _call_argument(text, "absent")
    if inner is not None:
        return inner
    depth = 0
    quote = ""
    found: list[int] = []
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0 and text.startswith(_COMPARISONS, i):
            found.append(i)
            i += 1 if text[i + 1 : i + 2] == "=" else 0
        i += 1
    if len(found) > 1:
        raise ValueError(f"more than one comparison at the top level of {expr!r}")
    return text[: found[0]].strip() if found else text


def _call_argument(text: str, function: str) -> str | None:
    """The argument of ``function(...)`` when it is the whole expression."""
    if not (text.startswith(f"{function}(") and text.endswith(")")):
        return None
    depth = 0
    for i, char in enumerate(text[len(function) :], start=len(function)):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return text[len(function) + 1 : -1].strip() if i == len(text) - 1 else None
    return None


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (``evcharging_*`` and ``up``)."""
    return set(_METRIC.findall(expr))
