"""Fixtures of the kind end-to-end tests (see evkind_cluster): skip without the
kind cluster, and one release of the chart for the session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# --import-mode=importlib puts no test folder on sys.path; the helper module
# beside this file is imported by name.
sys.path.insert(0, str(Path(__file__).parent))

from evkind_cluster import Release, install, why_no_cluster


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [i for i in items if here in Path(str(i.path)).parents]
    if not mine:
        return
    reason = why_no_cluster()
    if reason:
        for item in mine:
            item.add_marker(pytest.mark.skip(reason=f"no cluster: {reason}"))


@pytest.fixture(scope="session")
def release() -> Release:
    return install()
