"""System tools a test needs (chromium, openssl, valgrind…): skipped where missing,
except under CI (``EV_REQUIRE_TOOLS=1`` or ``CI=true``), where a missing tool fails
the test, so CI cannot pass by skipping what it was meant to check."""

from __future__ import annotations

import os
import shutil
from typing import NoReturn

import pytest

__all__ = ["require_tool", "tools_required", "unavailable"]


def tools_required() -> bool:
    """Under CI every tool a test needs must be there."""
    return os.environ.get("EV_REQUIRE_TOOLS") == "1" or os.environ.get("CI") == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test saying ``reason``, or fail it under CI."""
    if tools_required():
        pytest.fail(f"{reason} (required under CI: EV_REQUIRE_TOOLS=1 or CI=true)", pytrace=False)
    pytest.skip(reason)


def require_tool(tool: str, purpose: str) -> str:
    """The tool's path (a name on PATH or an absolute path); otherwise skip (locally) or
    fail (CI), saying what it is for: ``purpose`` reads after "needed", e.g. "to count
    instructions (Debian package valgrind)"."""
    found = shutil.which(tool)
    if found is None:
        unavailable(f"{tool} is not installed; it is needed {purpose}")
    return found
