"""The service images: one Dockerfile for all four, built from the repository root.

Checked as text here (tests/containers builds and runs them where an engine
is): the stages, the dependency layer before the sources, nothing pulled from
a registry but the base image, the non-root user, the entrypoint the chart
relies on (its containers set only args).
"""

from __future__ import annotations

import re
import tomllib

import yaml
from evchart_dockerfile import DOCKERFILE, SERVICE_LINK, SERVICES, dockerfile
from evchart_make import make_dry_run, makefile_variable
from evchart_render import CHART_DIR, REPO


def test_the_image_is_multi_stage_on_a_base_chosen_at_build_time() -> None:
    image = dockerfile()
    bases = [args for _stage, instruction, args in image.instructions if instruction == "FROM"]
    assert bases == ["${BASE_IMAGE} AS builder", "${BASE_IMAGE}"]
    assert image.arg_default("BASE_IMAGE") == "python:3.11-slim-bookworm"


def test_nothing_but_the_base_comes_from_a_registry() -> None:
    text = DOCKERFILE.read_text()
    # A `# syntax=` line makes BuildKit pull its frontend image; COPY --from an
    # image (ghcr.io/astral-sh/uv) pulls that image.
    assert not re.search(r"^#\s*syntax\s*=", text, re.M | re.I)
    copies_from = [a for _s, i, a in dockerfile().instructions if i == "COPY" and "--from" in a]
    assert copies_from == ["--from=builder /app/.venv /app/.venv"]
    assert 'pip install --no-cache-dir --quiet "uv==${UV_VERSION}"' in text
    assert dockerfile().arg_default("UV_VERSION") == makefile_variable("UV_VERSION")


def test_the_extra_ca_bundle_is_a_build_secret_only() -> None:
    image = dockerfile()
    downloads = [a for _s, i, a in image.instructions if i == "RUN" and ("pip" in a or "sync" in a)]
    assert len(downloads) == 3
    assert all("--mount=type=secret,id=ca" in a for a in downloads)
    # Mounted for those RUNs alone: no file of it in a layer, nothing of it at run time.
    assert not any(
        i in {"COPY", "ADD", "ENV"} and "secrets" in a for _s, i, a in image.instructions
    )
    assert not any("secret" in a for _i, a in image.final())


def test_dependencies_are_a_layer_before_the_sources() -> None:
    builder = dockerfile().stage("builder")
    syncs = [i for i, (instr, args) in enumerate(builder) if instr == "RUN" and "uv sync" in args]
    copy_source = next(
        i
        for i, (instr, args) in enumerate(builder)
        if instr == "COPY" and "services/${SERVICE}" in args
    )
    assert len(syncs) == 2
    first, second = (builder[i][1] for i in syncs)
    assert syncs[0] < copy_source < syncs[1]
    for args in (first, second):
        assert "--frozen --no-dev" in args and '--package "ev${SERVICE}"' in args
    assert "--no-install-workspace" in first
    assert "--no-editable" in second
    assert dockerfile().env("builder")["UV_PROJECT_ENVIRONMENT"] == "/app/.venv"


def test_the_runtime_image_holds_the_venv_only_and_runs_as_10001() -> None:
    final = dockerfile().final()
    copies = [args for instr, args in final if instr == "COPY"]
    assert copies == ["--from=builder /app/.venv /app/.venv"]
    assert ("USER", "10001:10001") in final
    assert not any(instr == "RUN" and ("pip" in args or "apt-get" in args) for instr, args in final)


def test_the_entrypoint_is_the_services_console_script() -> None:
    # Exec form (no shell in between) on a link to ev${SERVICE}, which every service has.
    assert dockerfile().entrypoint() == [SERVICE_LINK]
    assert f'ln -s "ev${{SERVICE}}" {SERVICE_LINK}' in DOCKERFILE.read_text()
    for service in SERVICES:
        project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
        assert f"ev{service}" in project["project"]["scripts"]


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "**/__pycache__", "**/tests", "*.db"} <= ignored
    # ... but keeps what the Dockerfile copies.
    assert not ignored & {"libs", "services", "uv.lock", "pyproject.toml", "Dockerfile"}


def test_make_images_builds_every_service_tagged_with_the_charts_app_version() -> None:
    app_version = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["appVersion"]
    for variables, base, tag in (
        ([], "python:3.11-slim-bookworm", app_version),
        (["VERSION=9.9.9", "BASE_IMAGE=local/base:1"], "local/base:1", "9.9.9"),
    ):
        plan = make_dry_run("images", "CONTAINER_ENGINE=podman", *variables)
        assert "--build-arg SERVICE=$s " in plan
        assert "podman build" in plan and f"--build-arg BASE_IMAGE={base} " in plan
        assert f"-t evcharging/ev$s:{tag} ." in plan
        assert "--secret" not in plan
    with_ca = make_dry_run("images", "CONTAINER_ENGINE=docker", "CA_BUNDLE=/etc/ca.pem")
    assert "--secret id=ca,src=/etc/ca.pem" in with_ca
    assert "for s in central engine monitor driver ocpp;" in with_ca
