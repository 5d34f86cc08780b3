"""The chart's README and schema say what every value is, generated from values.yaml;
the chart packages with them; `make release` ships images and chart together."""

from __future__ import annotations

import importlib.util
import json
import sys
import tarfile
from functools import cache
from pathlib import Path
from types import ModuleType

import helm_python as helm
import yaml
from evchart_make import make_dry_run
from evchart_render import CHART_DIR, REPO


@cache
def values_docs() -> ModuleType:
    """charts/values_docs.py, the generator (a script beside the chart, not a package)."""
    spec = importlib.util.spec_from_file_location("values_docs", REPO / "charts" / "values_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_the_readme_and_the_schema_are_what_make_chart_docs_writes() -> None:
    readme, schema = values_docs().expected()
    assert (CHART_DIR / "README.md").read_text() == readme, "run `make chart-docs`"
    assert (CHART_DIR / "values.schema.json").read_text() == schema, "run `make chart-docs`"


def test_the_readme_lists_every_documented_value_with_its_default() -> None:
    docs = values_docs()
    text = (CHART_DIR / "values.yaml").read_text()
    readme = (CHART_DIR / "README.md").read_text()
    documented = [v for v in docs.parse(text) if v.documented]
    assert len(documented) > 100
    for value in documented:
        assert f"| `{value.name}` | " in readme, value.name
    assert "| `chargingPoints.replicas` | `3` | Number of charging points" in readme
    assert "| `kafka.strimziApiCheck` | `true` |" in readme
    for heading in ("## Prerequisites", "## Install", "## Upgrades", "## Values"):
        assert heading in readme
    for command in ("make kind-up", "make minikube-up", "helm install evcharging oci://"):
        assert command in readme


def test_every_key_of_the_schema_carries_a_description() -> None:
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    keys = values_docs().schema_properties(schema)
    assert [path for path, sub in keys if not sub.get("description")] == []
    described = dict(keys)
    assert described["chargingPoints.replicas"]["description"].startswith("Number of charging")


def test_the_chart_packages_with_its_readme_schema_and_versions(tmp_path: Path) -> None:
    archive = Path(helm.package(CHART_DIR, destination=tmp_path))
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert archive.name == f"evcharging-{chart['version']}.tgz"
    with tarfile.open(archive) as packed:
        names = set(packed.getnames())
        packaged = yaml.safe_load(packed.extractfile("evcharging/Chart.yaml").read())  # type: ignore[union-attr]
    assert {"evcharging/README.md", "evcharging/values.schema.json"} <= names
    assert packaged["appVersion"] == chart["appVersion"]


def test_make_release_builds_the_images_with_the_app_version_and_pushes_only_with_a_registry() -> (
    None
):
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    app_version, version = chart["appVersion"], chart["version"]
    local = make_dry_run("release", "CONTAINER_ENGINE=docker", "VERSION=9.9.9")
    assert f"VERSION={app_version}" in local  # the release tag is the appVersion
    assert "helm package charts/evcharging --destination dist" in local
    assert " push" not in local
    pushed = make_dry_run("release", "CONTAINER_ENGINE=docker", "REGISTRY=registry.example.com/ev")
    assert f"docker push registry.example.com/ev/ev$s:{app_version}" in pushed
    assert f"helm push dist/evcharging-{version}.tgz oci://registry.example.com/ev" in pushed
