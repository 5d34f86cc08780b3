"""The one way the e2e tests wait: poll a condition until a deadline.

A condition that raises ``OSError`` (the central not answering yet, a refused
connection) counts as "not yet"; the failure names what was awaited and the
last thing seen, so a timeout reads as a finding, not as a mystery.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["hold", "wait_until"]

T = TypeVar("T")

_POLL_S = 0.1


def wait_until(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    """Return the condition's first truthy value; AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = condition()
        except OSError as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:g} s: {what} (last seen: {last!r})")
        time.sleep(_POLL_S)


def hold(seconds: float, why: str) -> None:
    """Keep the scenario as it is for ``seconds`` (an outage's length, say).

    Not a way to wait for something: that is :func:`wait_until`. ``why`` is for
    the reader of the test.
    """
    del why
    time.sleep(seconds)
