"""The event-loop lag probe sees a blocked loop."""

from __future__ import annotations

import asyncio
import time

from evproto.metrics import watch_loop_lag


async def test_a_blocking_call_shows_as_lag() -> None:
    observed: list[float] = []
    recovered = asyncio.Event()

    def observe(lag: float) -> None:
        observed.append(lag)
        if max(observed) >= 0.2 and lag < 0.2:
            recovered.set()  # saw the block, then a round on time again

    probe = asyncio.create_task(watch_loop_lag(observe, interval=0.05))
    await asyncio.sleep(0)  # the probe arms its first timer
    time.sleep(0.3)  # blocks the loop on purpose: the thing the probe must see
    await asyncio.wait_for(recovered.wait(), 5.0)
    probe.cancel()

    assert max(observed) >= 0.2
    assert observed[-1] < 0.2
