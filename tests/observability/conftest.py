"""Fixtures of the observability tests: the observed local system and its Prometheus.

``observed`` starts once per session: broker, central, two CPs, a batch driver
and the OCPP gateway (one scripted station) as processes with their ``/metrics``,
a real Prometheus scraping them with the chart's rules loaded (when the binary is
installed), then the supply scenario. On a failure the report carries the tail of every process log.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from evstack.fixtures import show_logs_on_failure

# --import-mode=importlib puts no test folder on sys.path: the helpers beside this
# file (obs_*.py), the chart tests' renderer (tests/chart/evchart_render.py) and the
# e2e tests' scripted OCPP station (tests/e2e/e2e_ocpp.py).
sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parents[1] / "chart"))
sys.path.insert(0, str(Path(__file__).parent))

from obs_chart import ChartRelease, render_monitoring, write_rules
from obs_prometheus import Prometheus
from obs_system import Observed, ObservedSystem


@pytest.fixture(scope="session")
def release() -> ChartRelease:
    """The chart rendered with monitoring and the rules on (release evcharging)."""
    return render_monitoring()


@pytest.fixture(scope="session")
def observed(request: pytest.FixtureRequest, release: ChartRelease) -> Iterator[Observed]:
    # A short path: the engines' control sockets live in it (Unix sockets: 107 bytes).
    workdir = Path(tempfile.mkdtemp(prefix="obs-"))
    system = ObservedSystem(workdir)
    show_logs_on_failure(request.config, "observed", system)
    prometheus: Prometheus | None = None
    try:
        system.start()
        binary = shutil.which("prometheus")
        if binary is not None:
            rules = write_rules(release.rules, workdir / "rules.yaml")
            prometheus = Prometheus(
                binary, workdir / "prometheus", system.scrape_targets(release), [rules]
            ).start()
            prometheus.wait_scraping()  # so that it sees the sessions happen
        system.run_sessions()
        yield Observed(system, prometheus)
    finally:
        if prometheus is not None:
            prometheus.stop()
        system.stop()
    shutil.rmtree(workdir, ignore_errors=True)
