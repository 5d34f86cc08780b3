"""Retry policies: temporary failures (peer down) back off exponentially with
jitter; permanent ones (bad config, rejected credentials) fail at once."""

from __future__ import annotations

import logging
import random

import tenacity

from evproto.errors import BrokerError, LinkError
from evproto.logs import kv

__all__ = ["TEMPORARY_ERRORS", "backoff_delay", "peer_retry"]

TEMPORARY_ERRORS: tuple[type[BaseException], ...] = (
    LinkError,
    OSError,
    BrokerError,
    TimeoutError,
)


def peer_retry(
    what: str,
    *,
    initial: float = 0.5,
    cap: float = 15.0,
    attempts: int | None = None,
    log: logging.Logger | None = None,
) -> tenacity.AsyncRetrying:
    """``async for attempt in peer_retry("central"): with attempt: ...``"""
    logger = log or logging.getLogger("evproto.retry")

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        logger.warning(
            "%s unreachable, retrying %s",
            what,
            kv(attempt=state.attempt_number, wait_s=f"{delay:.1f}", error=exc),
        )

    return tenacity.AsyncRetrying(
        wait=tenacity.wait_random_exponential(multiplier=initial, max=cap),
        retry=tenacity.retry_if_exception_type(TEMPORARY_ERRORS),
        stop=tenacity.stop_after_attempt(attempts) if attempts else tenacity.stop_never,
        before_sleep=before_sleep,
        reraise=True,
    )


def backoff_delay(failures: int, *, initial: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failures in a row: ``initial`` doubling to
    ``cap``, ±20 % jitter. For schedules that must not sleep (a paused partition, a
    record produced again later); code that may await uses :func:`peer_retry`."""
    return min(cap, initial * 2.0 ** max(0, failures - 1)) * random.uniform(0.8, 1.2)
