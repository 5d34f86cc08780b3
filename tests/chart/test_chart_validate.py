"""The chart lints clean and every rendered object is valid for its API schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from evchart_render import Rendered, lint
from evchart_schemas import builtin_errors, crd_errors, is_builtin
from evchart_variants import VARIANTS


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_helm_lint_strict_finds_nothing(variant: str) -> None:
    values, _apis = VARIANTS[variant]
    assert lint(values) == []


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_builtin_objects_are_valid_kubernetes(
    rendered_variants: dict[str, Rendered], variant: str
) -> None:
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": errors
        for o in rendered_variants[variant].objects
        if is_builtin(o) and (errors := builtin_errors(o))
    }
    assert problems == {}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_custom_resources_match_their_crds(
    rendered_variants: dict[str, Rendered], variant: str, shared: Path
) -> None:
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": errors
        for o in rendered_variants[variant].objects
        if not is_builtin(o) and (errors := crd_errors(o, shared))
    }
    assert problems == {}


def test_the_crd_check_rejects_a_misspelt_field(
    rendered_variants: dict[str, Rendered], shared: Path
) -> None:
    """The closed CRD schemas catch what the API server would silently prune."""
    topic = dict(rendered_variants["default"].of_kind("KafkaTopic")[0])
    topic["spec"] = {**topic["spec"], "partition": 3}
    assert any("'partition' was unexpected" in e for e in crd_errors(topic, shared))


def test_custom_resources_are_the_expected_kinds(rendered_variants: dict[str, Rendered]) -> None:
    kinds = {o["kind"] for r in rendered_variants.values() for o in r.objects if not is_builtin(o)}
    assert kinds == {
        "Kafka",
        "KafkaNodePool",
        "KafkaTopic",
        "KafkaUser",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
        "Issuer",
        "Certificate",
    }
