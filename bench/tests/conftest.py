"""Fixtures the bench's tests share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from evbench.run import central_missing, wait_ready
from evstack.broker import EmbeddedBroker
from evstack.localstack import LocalStack
from evstack.waiting import eventually

Until = Callable[..., Awaitable[Any]]


@pytest.fixture
def until() -> Until:
    """``await until(condition, timeout)`` (evstack.waiting's ``eventually``)."""
    return eventually


@pytest.fixture
def stack(embedded_broker: EmbeddedBroker, tmp_path: Path) -> Iterator[LocalStack]:
    """The real central, ready, on the session's broker; what a test starts beside it
    (the gateway) is stopped with it."""
    missing = central_missing()
    if missing:
        pytest.skip(f"the real central is not usable yet: {missing}")
    stack = LocalStack(tmp_path / "stack", kafka_port=embedded_broker.port)
    central = stack.start_central("--heartbeat-interval", "0.5")  # named to every monitor
    try:
        wait_ready(stack, central)
        yield stack
    finally:
        stack.stop()
