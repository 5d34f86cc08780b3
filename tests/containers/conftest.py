"""Fixtures of the container tests: the engine, the four images, image sizes to report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

# --import-mode=importlib puts no test folder on sys.path: the helper modules
# here (evcontainers_*) and of the chart tests (evchart_*) by name.
sys.path.insert(0, str(Path(__file__).parents[1] / "chart"))
sys.path.insert(0, str(Path(__file__).parent))

from evcontainers_engine import IMAGE_SIZES, Engine


@pytest.fixture(scope="session")
def engine() -> Engine:
    return Engine.find()


@pytest.fixture(scope="session")
def images(engine: Engine) -> dict[str, dict[str, Any]]:
    """Service -> the inspect data of its image (built beforehand by `make images`)."""
    return engine.require_images()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if IMAGE_SIZES:
        terminalreporter.section("container image sizes")
        for image, size, venv in IMAGE_SIZES:
            terminalreporter.write_line(f"{image}: {size:.0f} MB (virtualenv {venv:.0f} MB)")
