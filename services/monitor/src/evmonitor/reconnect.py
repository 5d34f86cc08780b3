"""Opening a link to a peer that may be down: tenacity back-off with jitter.

Temporary failures (connection refused, timeouts, a peer talking nonsense)
are retried, each attempt counted; permanent ones (``ConfigError``,
``AuthError``) go straight up to end the process.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import tenacity
from evproto.errors import LinkError, ProtocolError
from evproto.logs import kv
from evproto.retry import TEMPORARY_ERRORS, peer_retry

from evmonitor.metrics import MonitorMetrics
from evmonitor.peers import Peer

__all__ = ["Reconnector"]

T = TypeVar("T")
log = logging.getLogger("evmonitor.reconnect")


class Reconnector:
    def __init__(
        self, peer: Peer, *, cp_id: str, initial: float, cap: float, metrics: MonitorMetrics
    ) -> None:
        self._peer = peer
        self._cp_id = cp_id
        self._initial = initial
        self._cap = cap
        self._metrics = metrics
        self._first_attempt = True

    async def open(
        self,
        attempt: Callable[[], Awaitable[T]],
        on_failure: Callable[[BaseException], None],
    ) -> T:
        """Call ``attempt`` until it succeeds; ``on_failure`` hears of every temporary failure."""
        retrying = peer_retry(self._peer.value, initial=self._initial, cap=self._cap).copy(
            before_sleep=self._log_retry
        )
        async for try_once in retrying:
            with try_once:
                if not self._first_attempt:
                    self._metrics.reconnect_attempts.labels(peer=self._peer.value).inc()
                self._first_attempt = False
                try:
                    return await attempt()
                except ProtocolError as exc:
                    on_failure(exc)  # a peer talking nonsense may be fixed by a restart
                    raise LinkError(
                        f"{self._peer.value} broke the protocol: {exc.message}"
                    ) from exc
                except TEMPORARY_ERRORS as exc:
                    on_failure(exc)
                    raise
        raise AssertionError("tenacity stops only by raising")  # pragma: no cover

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        # The link going down was logged once already; each retry is detail.
        delay = state.next_action.sleep if state.next_action else 0.0
        error = state.outcome.exception() if state.outcome else None
        log.debug(
            "retrying %s",
            kv(cp=self._cp_id, peer=self._peer.value, attempt=state.attempt_number,
               wait_s=f"{delay:.2f}", error=error),
        )  # fmt: skip
