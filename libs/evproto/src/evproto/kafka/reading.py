"""A consumer loop that says when it reads, for services that serve their peers only
from then on.

A group with no committed offset starts at the topic's end ("latest"), resolved
when the loop is assigned: a record published before that is never read. A
service that opened its port first would let its peers act on it (a CP shown
ACTIVE, a station online) while the directives sent to it were still skipped.
"""

from __future__ import annotations

import asyncio
import logging

from evproto.kafka.consumer import ConsumerLoop
from evproto.logs import kv
from evproto.retry import peer_retry

__all__ = ["assign_and_run", "wait_until_assigned"]

_ASSIGN_TIMEOUT = 5.0  # seconds per attempt; attempts back off up to the same
log = logging.getLogger("evproto.kafka")


async def assign_and_run(
    consumer: ConsumerLoop,
    stop: asyncio.Event,
    ready: asyncio.Event,
    *,
    what: str,
    logger: logging.Logger = log,
) -> None:
    """Assign (retrying while the broker is away), set ``ready``, consume until ``stop``."""
    retrying = peer_retry(f"broker (reading {what})", cap=_ASSIGN_TIMEOUT, log=logger)
    async for attempt in retrying:
        with attempt:
            await consumer.assign(timeout=_ASSIGN_TIMEOUT)
    ready.set()
    logger.info("reading %s %s", what, kv(group=consumer.group_id))
    await consumer.run(stop)


async def wait_until_assigned(
    reading: asyncio.Task[None], ready: asyncio.Event, stop: asyncio.Event
) -> bool:
    """Wait for ``reading`` (:func:`assign_and_run`) to set ``ready``: True; False when
    ``stop`` comes first; the reader's error raised when it gave up first."""
    waits = {asyncio.create_task(ready.wait()), asyncio.create_task(stop.wait())}
    try:
        await asyncio.wait({*waits, reading}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
    if reading.done() and not ready.is_set():
        reading.result()  # the reader gave up: its error says why
    return ready.is_set()
