"""Waiting for an event with a deadline (the only way these tests wait)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str) -> T:
    """The condition's first truthy value; an OSError (not answering yet) counts as "not yet"."""
    deadline = time.monotonic() + timeout
    seen: object = None
    while time.monotonic() < deadline:
        try:
            seen = condition()
        except OSError as exc:
            seen = exc
        else:
            if seen:
                return seen
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout:g} s: {what} (last seen: {seen!r})")
