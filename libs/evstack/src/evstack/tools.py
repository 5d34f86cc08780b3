"""System tools a test needs (chromium, openssl, valgrind…): skipped where missing,
except under CI (``EV_REQUIRE_TOOLS=1``), where a missing tool fails the test."""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["require_tool"]


def require_tool(tool: str, purpose: str) -> str:
    """The tool's path; otherwise skip (locally) or fail (CI), saying what it is for."""
    found = shutil.which(tool)
    if found is not None:
        return found
    if os.environ.get("EV_REQUIRE_TOOLS") == "1":
        pytest.fail(f"{tool} is required (EV_REQUIRE_TOOLS=1) {purpose}, but missing")
    pytest.skip(f"{tool} is not installed; it is needed {purpose}")
