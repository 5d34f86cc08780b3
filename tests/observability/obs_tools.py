"""The Prometheus tools (Debian package ``prometheus``): found, or the test is skipped.

Under ``EV_REQUIRE_TOOLS=1`` (CI) a missing tool fails the test instead, so CI
cannot pass by skipping what it was meant to check.
"""

from __future__ import annotations

import os
import shutil

import pytest

__all__ = ["require_tool"]


def require_tool(name: str) -> str:
    """The path of ``name`` (``prometheus``, ``promtool``); skip or fail when missing."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} is not installed (Debian package prometheus: apt-get install prometheus)"
        if os.environ.get("EV_REQUIRE_TOOLS") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
