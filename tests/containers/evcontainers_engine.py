"""The container engine the container tests drive: docker or podman, through its CLI.

The engine is the one ``make images`` uses (``images/engine.sh``: ``$CONTAINER_ENGINE``,
else a docker client that builds with BuildKit, else podman). Without an engine
whose daemon answers, or without the images, the tests are skipped with what to
do; under CI (``EV_REQUIRE_TOOLS=1`` or ``CI=true``) they fail instead, so a CI
machine that lost its engine cannot pass by skipping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from evstack.tools import unavailable

REPO = Path(__file__).resolve().parents[2]
SERVICES = ("central", "engine", "monitor", "driver", "ocpp")
# (image, size in MB, its virtualenv in MB): measured by test_container_images,
# shown at the end of the run.
IMAGE_SIZES: list[tuple[str, float, float]] = []
BUILD_HINT = (
    "build them with `make images`, or where no registry is reachable "
    "`make base-image && make images BASE_IMAGE=evcharging/python:3.11-bookworm`"
)


def app_version() -> str:
    chart = yaml.safe_load((REPO / "charts" / "evcharging" / "Chart.yaml").read_text())
    return str(chart["appVersion"])


def image_tag() -> str:
    """``make images``' default: the chart's appVersion (EV_IMAGE_TAG overrides)."""
    return os.environ.get("EV_IMAGE_TAG") or app_version()


def image_registry() -> str:
    return os.environ.get("EV_IMAGE_REGISTRY") or "evcharging"


def image_of(service: str) -> str:
    return f"{image_registry()}/ev{service}:{image_tag()}"


@dataclass(frozen=True)
class Engine:
    """One engine CLI (``/usr/bin/docker``, ``podman``); every call has a timeout."""

    command: str

    @staticmethod
    def find() -> Engine:
        """The engine ``make images`` would use, or skip/fail saying why there is none."""
        done = subprocess.run(
            [str(REPO / "images" / "engine.sh")],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        engine = Engine(done.stdout.strip())
        if shutil.which(engine.command) is None:
            unavailable(
                "no container engine: install Docker (Debian: apt-get install docker.io) "
                "or podman, or set CONTAINER_ENGINE"
            )
        info = engine.run("info", check=False, timeout=30)
        if info.returncode != 0:
            unavailable(
                f"the container engine {engine.command} does not answer: start its daemon "
                f"(as root: images/dockerd.sh) ({info.stderr.strip()[-200:]})"
            )
        return engine

    def run(
        self, *args: str, timeout: float = 60, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.command, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{self.command} {' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
            )
        return done

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def inspect(self, kind: str, name: str) -> dict[str, Any] | None:
        """``<engine> <kind> inspect``: the object, or None when there is none."""
        done = self.run(kind, "inspect", name, check=False)
        if done.returncode != 0:
            return None
        found: list[dict[str, Any]] = json.loads(done.stdout)
        return found[0]

    def require_images(self) -> dict[str, dict[str, Any]]:
        """Service -> its image's inspect data; skip/fail when one is missing."""
        images = {s: self.inspect("image", image_of(s)) for s in SERVICES}
        missing = [image_of(s) for s, found in images.items() if found is None]
        if missing:
            unavailable(f"the images {', '.join(missing)} are missing: {BUILD_HINT}")
        return {s: found for s, found in images.items() if found is not None}
