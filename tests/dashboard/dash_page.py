"""What a test does on the dashboard page: sign in, check accessibility with axe-core,
and take the operator guide's screenshots."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["assert_accessible", "screenshot", "sign_in"]

_AXE = Path(__file__).parent / "vendor" / "axe.min.js"
_BLOCKING = {"serious", "critical"}
_RULE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
# EV_SCREENSHOTS=docs/operator-guide refreshes the guide's images (see docs/operator-guide.md)
_SHOTS = os.environ.get("EV_SCREENSHOTS", "")


def sign_in(page: Any, token: str) -> None:
    page.get_by_label("Access token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Signed in as").wait_for()


def assert_accessible(page: Any, what: str) -> None:
    """axe-core (WCAG 2.1 A/AA rules) finds no serious or critical violation."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(content=_AXE.read_text())
    violations = page.evaluate(
        """async (TAGS) => (await axe.run(document, {
               runOnly: {type: "tag", values: TAGS},
               resultTypes: ["violations"],
           })).violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))""",
        _RULE_TAGS,
    )
    blocking = [v for v in violations if v["impact"] in _BLOCKING]
    assert not blocking, f"accessibility violations on {what}: {blocking}"


def screenshot(page: Any, name: str) -> None:
    """The view as the operator guide shows it (only when EV_SCREENSHOTS names a folder)."""
    if not _SHOTS:
        return
    folder = Path(_SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / f"{name}.png"))
