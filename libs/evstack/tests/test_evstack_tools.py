"""A missing system tool skips a test on a developer's machine, and fails it under CI."""

from __future__ import annotations

from pathlib import Path

import pytest
from evstack.tools import require_tool, unavailable


@pytest.fixture
def no_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EV_REQUIRE_TOOLS", raising=False)
    monkeypatch.delenv("CI", raising=False)


@pytest.mark.usefixtures("no_ci")
def test_a_missing_tool_skips_saying_what_it_is_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(
        pytest.skip.Exception, match=r"promtool is not installed; it is needed to check rules"
    ):
        require_tool("promtool", "to check rules")


@pytest.mark.usefixtures("no_ci")
@pytest.mark.parametrize(("name", "value"), [("EV_REQUIRE_TOOLS", "1"), ("CI", "true")])
def test_a_missing_tool_fails_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv(name, value)
    with pytest.raises(pytest.fail.Exception, match=r"prometheus is not installed.*required"):
        require_tool("prometheus", "to scrape")
    with pytest.raises(pytest.fail.Exception, match="no engine here"):
        unavailable("no engine here")


@pytest.mark.usefixtures("no_ci")
def test_anything_else_missing_skips_locally() -> None:
    with pytest.raises(pytest.skip.Exception, match="no engine here"):
        unavailable("no engine here")


def test_an_installed_tool_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tool = tmp_path / "promtool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert require_tool("promtool", "to check rules") == str(tool)
    assert require_tool(str(tool), "by its path") == str(tool)
