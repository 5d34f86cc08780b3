"""Helpers the bench's tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

Until = Callable[..., Awaitable[None]]


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        assert loop.time() < deadline, "condition not met before the deadline"
        await asyncio.sleep(0.01)


@pytest.fixture
def until() -> Until:
    return _until
