"""Layering: evproto imports no service, and services never import each other."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import evproto
import pytest

REPO = Path(__file__).resolve().parents[3]
SERVICES = {"evcentral", "evengine", "evmonitor", "evdriver", "evocpp"}


def imported_packages(path: Path) -> set[str]:
    """Top-level package of every absolute import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_the_repo_layout_is_what_this_test_walks() -> None:
    assert (REPO / "libs/evproto/src/evproto/__init__.py").is_file()
    assert {p.name for p in (REPO / "services").glob("*/src/ev*")} == SERVICES


def test_evproto_imports_no_service() -> None:
    offenders = {
        str(path.relative_to(REPO)): imported_packages(path) & SERVICES
        for path in (REPO / "libs/evproto/src/evproto").rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_a_service_imports_no_other_service(service: str) -> None:
    src = next((REPO / "services").glob(f"*/src/{service}"))
    others = SERVICES - {service}
    offenders = {
        str(path.relative_to(REPO)): imported_packages(path) & others for path in src.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_nothing_under_services_imports_confluent_kafka() -> None:
    """Kafka stays behind evproto.kafka, in the services' tests too (import-linter
    checks only the packages)."""
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "services").rglob("*.py")
        if "confluent_kafka" in imported_packages(path)
    ]
    assert offenders == []


def test_the_import_walker_sees_both_import_forms(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import evengine.x\nfrom evcentral import y\nfrom . import z\n")
    assert imported_packages(probe) == {"evengine", "evcentral"}


EVPROTO_MODULES = [
    "auth", "central_options", "config", "connection", "errors", "framing", "kafka",
    "kafka._errors",
    "kafka.admin", "kafka.assignment", "kafka.consumer", "kafka.lag", "kafka.publisher",
    "kafka.options", "kafka.positions", "kafka.reading", "kafka.settings", "kafka.snapshot",
    "lifecycle", "logs", "messages", "metrics", "proofs", "retry", "routing",
    "schema", "secret_file", "service", "states", "topics", "vocabulary",
]  # fmt: skip


def test_every_module_is_listed_here() -> None:
    root = REPO / "libs/evproto/src/evproto"
    dotted = {".".join(p.relative_to(root).with_suffix("").parts) for p in root.rglob("*.py")}
    on_disk = {name.removesuffix(".__init__") for name in dotted} - {"__init__"}
    assert on_disk == set(EVPROTO_MODULES)


@pytest.mark.parametrize("name", EVPROTO_MODULES)
def test_every_public_name_exists(name: str) -> None:
    module = importlib.import_module(f"evproto.{name}")
    for public in getattr(module, "__all__", []):
        assert hasattr(module, public), f"evproto.{name}.__all__ lists missing {public}"


def test_the_package_api_is_pinned() -> None:
    assert sorted(evproto.__all__) == [
        "CpState", "EvError", "Health", "Message", "MsgType", "ProtocolError", "Topic",
        "decode_message", "encode_message", "partition_for",
    ]  # fmt: skip
