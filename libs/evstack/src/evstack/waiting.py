"""The one way a test waits: poll a condition until it holds, fail at a deadline.

One policy for every suite, async or not: the condition is asked every
:data:`POLL_S` seconds (``poll=`` for a costly one, like a kubectl call) until
it returns something truthy, which is returned;
an ``OSError`` (a server not answering yet, a refused connection) counts as
"not yet"; at the deadline an ``AssertionError`` names what was awaited and the
last thing seen, so a timeout reads as a finding, not as a mystery.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["DEFAULT_TIMEOUT", "POLL_S", "eventually", "hold", "wait_until"]

T = TypeVar("T")

DEFAULT_TIMEOUT = 15.0  # seconds; a test that needs longer says so
POLL_S = 0.05


async def eventually(
    condition: Callable[[], T | Awaitable[T | None] | None],
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "condition",
    *,
    poll: float = POLL_S,
) -> T:
    """In a coroutine: the condition's (plain or async) first truthy value."""
    polling = _Polling(timeout, what)
    while True:
        with polling.asking():
            answer = condition()
            polling.answer = await answer if inspect.isawaitable(answer) else answer
        if polling.holds():
            return polling.answer  # type: ignore[return-value]
        await asyncio.sleep(poll)


def wait_until(
    condition: Callable[[], T | None],
    timeout: float = DEFAULT_TIMEOUT,
    what: str = "condition",
    *,
    poll: float = POLL_S,
) -> T:
    """Blocking, for tests that are not coroutines: the condition's first truthy value."""
    polling = _Polling(timeout, what)
    while True:
        with polling.asking():
            polling.answer = condition()
        if polling.holds():
            return polling.answer  # type: ignore[return-value]
        time.sleep(poll)


@dataclass(frozen=True, slots=True)
class _NotYet:
    """A condition that raised OSError: falsy, and shown as the error it was."""

    error: OSError

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return repr(self.error)


class _Polling:
    """The policy of both waits, written once: the last answer (an ``OSError`` kept as
    "not yet"), and the deadline that turns it into a finding."""

    def __init__(self, timeout: float, what: str) -> None:
        self._timeout, self._what = timeout, what
        self._end = time.monotonic() + timeout
        self.answer: object = None

    @contextmanager
    def asking(self) -> Iterator[None]:
        """Around one ask of the condition: a server not answering yet is "not yet"."""
        try:
            yield
        except OSError as exc:
            self.answer = _NotYet(exc)

    def holds(self) -> bool:
        """True when the last answer is truthy; AssertionError once the deadline has passed."""
        if self.answer:
            return True
        if time.monotonic() >= self._end:
            raise AssertionError(
                f"not within {self._timeout:g}s: {self._what} (last seen: {self.answer!r})"
            )
        return False


def hold(seconds: float, why: str) -> None:
    """Keep a scenario as it is for ``seconds`` (an outage's length, say).

    Not a way to wait for something: that is :func:`wait_until`. ``why`` is for
    the reader of the test.
    """
    del why
    time.sleep(seconds)
