"""values.yaml and values.schema.json: typos are rejected, every value is documented."""

from __future__ import annotations

import json
import re
from typing import Any

import helm_python as helm
import pytest
from evchart_render import CHART_DIR, render


@pytest.mark.parametrize(
    ("values", "where", "key"),
    [
        ({"centrall": {}}, "at ''", "centrall"),
        ({"central": {"defaultPrize": 0.4}}, "at '/central'", "defaultPrize"),
        ({"kafka": {"nodePool": {"replica": 3}}}, "at '/kafka/nodePool'", "replica"),
        (
            {"chargingPoints": {"sites": [{"locaton": "Elche"}]}},
            "at '/chargingPoints/sites/0'",
            "locaton",
        ),
    ],
)
def test_a_misspelt_key_is_rejected_naming_the_key(
    values: dict[str, Any], where: str, key: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render(values)
    message = str(caught.value)
    assert where in message
    assert f"additional properties '{key}' not allowed" in message


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"chargingPoints": {"replicas": "3"}}, "at '/chargingPoints/replicas'"),
        ({"central": {"service": {"type": "Ingress"}}}, "at '/central/service/type'"),
        ({"kafka": {"external": {"bootstrap": "no port"}}}, "at '/kafka/external/bootstrap'"),
        ({"test": {"cpId": "charger 0"}}, "at '/test/cpId'"),
    ],
)
def test_a_wrong_value_is_rejected_naming_the_key(values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError, match=re.escape(where)):
        render(values)


def _objects_with_properties(schema: Any, path: str = "") -> list[tuple[str, Any]]:
    found = []
    if isinstance(schema, dict):
        if "properties" in schema:
            found.append((path or "<root>", schema))
            for name, sub in schema["properties"].items():
                found += _objects_with_properties(sub, f"{path}/{name}")
        for keyword in ("items", "additionalProperties"):
            if isinstance(schema.get(keyword), dict):
                found += _objects_with_properties(schema[keyword], f"{path}[{keyword}]")
    return found


def test_the_schema_closes_every_object_but_global() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    open_objects = [
        path
        for path, obj in _objects_with_properties(schema)
        if obj.get("additionalProperties") is not False
    ]
    # `global` is shared by every chart of an umbrella release: their keys must pass.
    assert open_objects == ["/global"]


_KEY = re.compile(r"^(?P<indent> *)(?P<key>-?[A-Za-z0-9_.][^:#]*):(?: |$)")


def test_every_value_is_commented() -> None:
    """A leaf key needs a comment on it or on one of its enclosing keys."""
    lines = (CHART_DIR / "values.yaml").read_text().splitlines()
    stack: list[tuple[int, bool]] = []  # (indent, commented) of the enclosing keys
    missing = []
    for number, line in enumerate(lines):
        match = _KEY.match(line)
        if not match:
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        previous = next((p for p in reversed(lines[:number]) if p.strip()), "")
        commented = previous.strip().startswith("#")
        is_leaf = line.rstrip().split(":", 1)[1].strip() != "" or not _opens_block(lines, number)
        if is_leaf and not commented and not any(c for _, c in stack):
            missing.append(f"line {number + 1}: {line.strip()}")
        stack.append((indent, commented))
    assert missing == []


def _opens_block(lines: list[str], number: int) -> bool:
    indent = len(lines[number]) - len(lines[number].lstrip())
    following = next(
        (p for p in lines[number + 1 :] if p.strip() and not p.strip().startswith("#")), ""
    )
    return len(following) - len(following.lstrip()) > indent or following.lstrip().startswith("- ")
