"""evstack.waiting: the one wait, async and blocking, with one policy."""

from __future__ import annotations

import itertools

import pytest
from evstack.waiting import eventually, wait_until


async def test_eventually_returns_the_first_truthy_value() -> None:
    counter = itertools.count()
    assert await eventually(lambda: next(counter) >= 3 and "ready", 5.0, "three polls") == "ready"


async def test_eventually_awaits_an_async_condition() -> None:
    async def ready() -> int:
        return 7

    assert await eventually(ready, 1.0, "an async answer") == 7


async def test_eventually_names_what_it_waited_for_and_the_last_answer() -> None:
    with pytest.raises(AssertionError, match=r"not within 0.2s: the light \(last seen: 0\)"):
        await eventually(lambda: 0, 0.2, "the light")


def test_wait_until_counts_an_oserror_as_not_yet() -> None:
    calls = itertools.count()

    def connect() -> str:
        if next(calls) < 2:
            raise ConnectionRefusedError("not listening yet")
        return "connected"

    assert wait_until(connect, 5.0, "a connection") == "connected"


def test_wait_until_reports_the_last_error_at_the_deadline() -> None:
    def refused() -> None:
        raise ConnectionRefusedError("refused")

    with pytest.raises(AssertionError, match="last seen: ConnectionRefusedError"):
        wait_until(refused, 0.2, "a connection")


async def test_eventually_returns_when_the_condition_holds_and_fails_naming_it() -> None:
    ticks: list[int] = []

    def grows() -> bool:
        ticks.append(1)
        return len(ticks) >= 3

    await eventually(grows, 5.0, "three polls")
    with pytest.raises(AssertionError, match=r"not within 0\.05s: never true"):
        await eventually(lambda: False, 0.05, "never true")


async def test_eventually_counts_an_oserror_of_an_async_condition_as_not_yet() -> None:
    calls = itertools.count()

    async def connect() -> str:
        if next(calls) < 2:
            raise ConnectionRefusedError("not listening yet")
        return "connected"

    assert await eventually(connect, 5.0, "a connection") == "connected"

    async def refused() -> None:
        raise ConnectionRefusedError("refused")

    with pytest.raises(AssertionError, match="last seen: ConnectionRefusedError"):
        await eventually(refused, 0.2, "a connection")
