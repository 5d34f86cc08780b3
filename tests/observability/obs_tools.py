"""The Prometheus tools (Debian package ``prometheus``): found, or the test is skipped
(failed under CI: ``evstack.tools``)."""

from __future__ import annotations

from evstack.tools import require_tool

__all__ = ["prometheus_tool"]


def prometheus_tool(name: str) -> str:
    """The path of ``name`` (``prometheus``, ``promtool``); skip or fail when missing."""
    return require_tool(name, "(Debian package prometheus: apt-get install prometheus)")
