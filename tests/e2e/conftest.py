"""Fixtures of the system end-to-end tests: the whole system as real processes.

``system`` gives each test its own short work directory and broker; the test
starts the central and charging points it needs (``system.start(cps=…)``),
drives them, and ends with ``system.check_conservation()``. On a failure the
report carries the tail of every process log, and the work directory is kept.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Generator, Iterator
from pathlib import Path

import pluggy
import pytest

# --import-mode=importlib puts no test folder on sys.path; the helper modules
# beside this file (e2e_*.py) are imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from e2e_system import System

_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()
_SYSTEM = pytest.StashKey[System]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    outcome = yield
    report = outcome.get_result()
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    system = item.stash.get(_SYSTEM, None)
    if system is not None and report.failed:
        report.sections.append(("process logs (last lines)", system.log_tails()))
        report.sections.append(("work directory (kept)", str(system.workdir)))


@pytest.fixture
def system(request: pytest.FixtureRequest) -> Iterator[System]:
    # A short path: the engines' control sockets live in it (Unix sockets: 107 bytes).
    workdir = Path(tempfile.mkdtemp(prefix="e2e-"))
    stack = System(workdir)
    request.node.stash[_SYSTEM] = stack
    stack.start_broker()
    yield stack
    stack.shutdown()
    call = request.node.stash.get(_REPORTS, {}).get("call")
    if call is None or not call.passed:
        return
    if not stack.conservation_checked:
        pytest.fail("the scenario ended without system.check_conservation()")
    shutil.rmtree(workdir, ignore_errors=True)
