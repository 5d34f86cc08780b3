"""Fixtures the bench's tests share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from evstack.waiting import eventually

Until = Callable[..., Awaitable[Any]]


@pytest.fixture
def until() -> Until:
    """``await until(condition, timeout)`` (evstack.waiting's ``eventually``)."""
    return eventually
