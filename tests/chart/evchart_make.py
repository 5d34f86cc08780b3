"""The Makefile as its users see it: a variable's default, what ``make -n`` would run."""

from __future__ import annotations

import re
import subprocess

from evchart_render import REPO


def makefile_variable(name: str) -> str:
    found = re.search(rf"^{name} \?= (.*)$", (REPO / "Makefile").read_text(), re.M)
    assert found is not None, f"the Makefile sets no {name}"
    return found.group(1).strip()


def make_dry_run(target: str, *variables: str) -> str:
    """What ``make -n`` would run: the recipe with every variable filled in, one line."""
    done = subprocess.run(
        ["make", "-s", "-n", target, *variables],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return " ".join(done.stdout.split())
