"""The service images: one Dockerfile per service, built from the repository root.

No Docker here, so the Dockerfiles are checked as text: the stages, the
dependency layer before the sources, the non-root user, the entrypoint the
chart relies on (its containers set only args).
"""

from __future__ import annotations

import re
import tomllib

import pytest
from evchart_dockerfile import SERVICES, Dockerfile, dockerfile
from evchart_render import REPO


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_is_multi_stage_on_slim_python(service: str) -> None:
    image = dockerfile(service)
    bases = [args for _stage, instruction, args in image.instructions if instruction == "FROM"]
    assert len(bases) >= 2
    assert image.arg_default("PYTHON_IMAGE").startswith("python:3.11-slim")
    assert bases[-1] == "${PYTHON_IMAGE}"  # the runtime stage
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", image.arg_default("UV_VERSION"))
    assert not any(":latest" in b for b in bases)


@pytest.mark.parametrize("service", SERVICES)
def test_dependencies_are_a_layer_before_the_sources(service: str) -> None:
    image = dockerfile(service)
    builder = image.stage("builder")
    syncs = [i for i, (instr, args) in enumerate(builder) if instr == "RUN" and "uv sync" in args]
    copy_source = next(
        i
        for i, (instr, args) in enumerate(builder)
        if instr == "COPY" and f"services/{service}" in args
    )
    assert len(syncs) == 2
    first, second = (builder[i][1] for i in syncs)
    assert syncs[0] < copy_source < syncs[1]
    for args in (first, second):
        assert "--frozen --no-dev" in args and f"--package ev{service}" in args
    assert "--no-install-workspace" in first
    assert "--no-editable" in second
    assert image.env("builder")["UV_PROJECT_ENVIRONMENT"] == "/app/.venv"


@pytest.mark.parametrize("service", SERVICES)
def test_the_runtime_image_holds_the_venv_only_and_runs_as_10001(service: str) -> None:
    final = dockerfile(service).final()
    copies = [args for instr, args in final if instr == "COPY"]
    assert copies == ["--from=builder /app/.venv /app/.venv"]
    assert ("USER", "10001:10001") in final
    assert not any(instr == "RUN" and ("pip" in args or "apt-get" in args) for instr, args in final)


@pytest.mark.parametrize("service", SERVICES)
def test_the_entrypoint_is_the_services_console_script(service: str) -> None:
    image: Dockerfile = dockerfile(service)
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text())
    assert image.entrypoint() == [f"ev{service}"]
    assert f"ev{service}" in project["project"]["scripts"]


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", ".venv", "**/__pycache__", "**/tests", "*.db"} <= ignored
    # ... but keeps what the Dockerfiles copy.
    assert not ignored & {"libs", "services", "uv.lock", "pyproject.toml"}


def test_make_images_tags_every_image_with_the_version() -> None:
    makefile = (REPO / "Makefile").read_text()
    recipe = re.search(r"^images:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert recipe is not None
    assert "-f services/$$s/Dockerfile -t $(REGISTRY)/ev$$s:$(VERSION) ." in recipe.group(1)
    assert re.search(r"^SERVICES := central engine monitor driver$", makefile, re.M)
