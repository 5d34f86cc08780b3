"""A token bucket per peer address (CP registrations: ``--registration-rate``/``-burst``)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PerAddressLimiter"]

_MAX_ADDRESSES = 10_000  # buckets kept; full ones are forgotten first when there are more


class PerAddressLimiter:
    """Each address may act ``burst`` times at once, then ``per_minute`` times a minute."""

    def __init__(
        self, per_minute: float, burst: int, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, at)

    def allow(self, address: str) -> bool:
        now = self._clock()
        tokens, at = self._buckets.get(address, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        if address not in self._buckets and len(self._buckets) >= _MAX_ADDRESSES:
            self._forget_full(now)
        self._buckets[address] = (tokens, now)
        return allowed

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that have refilled (forgetting them changes nothing)."""
        full = [
            address
            for address, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self._rate >= self._burst
        ]
        for address in full:
            del self._buckets[address]
        if len(self._buckets) >= _MAX_ADDRESSES:  # a flood from many addresses: start over
            self._buckets.clear()
