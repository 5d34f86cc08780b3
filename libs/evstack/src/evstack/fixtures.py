"""The pytest plugin every suite loads (root ``conftest.py``): the session's broker,
and the process logs a failing system test shows (:func:`show_logs_on_failure`)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, Protocol

import pytest
from evproto.kafka import KafkaSettings

from evstack.broker import EmbeddedBroker

__all__ = ["embedded_broker", "kafka_settings", "show_logs_on_failure"]


class ShowsLogs(Protocol):
    def log_tails(self) -> str: ...


_SHOWN = pytest.StashKey[list[tuple[str, ShowsLogs]]]()


@pytest.fixture(scope="session")
def embedded_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """One real Tansu broker for the whole test session, topics created."""
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    broker = EmbeddedBroker(log_path=log_path)
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def kafka_settings(embedded_broker: EmbeddedBroker) -> KafkaSettings:
    return KafkaSettings(embedded_broker.bootstrap, client_id="tests", session_timeout_ms=6000)


def show_logs_on_failure(config: pytest.Config, fixture: str, system: ShowsLogs) -> None:
    """A failing test that uses ``fixture`` reports the last lines of ``system``'s logs."""
    config.stash.setdefault(_SHOWN, []).append((fixture, system))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:  # pluggy's Result of the report
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    if not report.failed:
        return
    used = getattr(item, "fixturenames", ())
    for fixture, system in item.config.stash.get(_SHOWN, []):
        if fixture in used:
            report.sections.append(("process logs (last lines)", system.log_tails()))
