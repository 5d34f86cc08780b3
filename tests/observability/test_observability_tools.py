"""A missing Prometheus tool skips the checks on a developer's machine, and fails them in CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from obs_tools import require_tool


def test_a_missing_tool_skips_with_the_package_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("EV_REQUIRE_TOOLS", raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"promtool is not installed.*apt-get install prometheus"
    ):
        require_tool("promtool")


def test_a_missing_tool_fails_when_ci_requires_the_tools(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("EV_REQUIRE_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="prometheus is not installed"):
        require_tool("prometheus")


def test_an_installed_tool_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "promtool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_tool("promtool") == str(tool)
