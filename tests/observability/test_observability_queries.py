"""How the tests take the PromQL out of the dashboard and the rules."""

from __future__ import annotations

import pytest
from obs_queries import (
    GRAFANA_DEFAULTS,
    LabelValuesQuery,
    left_hand_side,
    metric_names,
    substitute,
    variable_queries,
)


@pytest.mark.parametrize(
    ("expr", "lhs"),
    [
        ("max(x) < 1", "max(x)"),
        ('x{namespace="a", state="B"} == 4', 'x{namespace="a", state="B"}'),
        ("sum(a) / sum(b) > 0.5", "sum(a) / sum(b)"),
        (
            "histogram_quantile(0.99, sum by (le) (rate(b[5m]))) > 2.5",
            "histogram_quantile(0.99, sum by (le) (rate(b[5m])))",
        ),
        ('absent(up{job="c"} == 1)', 'up{job="c"} == 1'),
        ('x{l=~"a|>b"} >= 3', 'x{l=~"a|>b"}'),
        ('x{l!="<"} != 0', 'x{l!="<"}'),
        ("rate(x[5m])", "rate(x[5m])"),
        ("absent(a) or absent(b)", "absent(a) or absent(b)"),
    ],
)
def test_the_left_hand_side_drops_the_threshold(expr: str, lhs: str) -> None:
    assert left_hand_side(expr) == lhs


def test_two_thresholds_are_refused() -> None:
    with pytest.raises(ValueError, match="more than one comparison"):
        left_hand_side("a > 1 and b < 2")


def test_grafana_variables_are_substituted_in_every_spelling() -> None:
    values = {**GRAFANA_DEFAULTS, "namespace": "ev"}
    expr = 'rate(x{n="$namespace"}[$__rate_interval]) + y{n="${namespace}"} + z{n="[[namespace]]"}'
    assert substitute(expr, values) == 'rate(x{n="ev"}[1m]) + y{n="ev"} + z{n="ev"}'
    with pytest.raises(KeyError, match=r"\$cluster"):
        substitute('x{c="$cluster"}', values)


def test_label_values_variables_are_read() -> None:
    dashboard = {
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource"},
                {
                    "name": "ns",
                    "type": "query",
                    "query": {"query": "label_values(m, namespace)"},
                },
            ]
        }
    }
    assert variable_queries(dashboard) == [LabelValuesQuery("ns", "m", "namespace")]


def test_metric_names_are_found_without_functions_or_labels() -> None:
    expr = 'sum by (le, group) (rate(evcharging_central_a_bucket{namespace="x"}[1m])) / up'
    assert metric_names(expr) == {"evcharging_central_a_bucket", "up"}
