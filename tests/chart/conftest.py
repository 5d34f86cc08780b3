"""Fixtures of the chart tests: rendered variants of the chart and the CRD schemas."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib puts no test folder on sys.path; the helper modules
# beside this file (evchart_*.py) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from evchart_render import Rendered, render
from evchart_schemas import shared_dir
from evchart_variants import VARIANTS


@pytest.fixture(scope="session")
def rendered_variants() -> dict[str, Rendered]:
    return {name: render(values, api_versions=apis) for name, (values, apis) in VARIANTS.items()}


@pytest.fixture(scope="session")
def default_chart(rendered_variants: dict[str, Rendered]) -> Rendered:
    return rendered_variants["default"]


@pytest.fixture(scope="session")
def shared() -> Path:
    return shared_dir()
