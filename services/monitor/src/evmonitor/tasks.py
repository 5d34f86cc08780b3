"""Running the parts of a link together: when one ends, all end."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["first_to_finish"]


async def first_to_finish(*coros: Coroutine[Any, Any, object]) -> None:
    """Run the coroutines until the first one returns or fails; cancel the others and
    wait for them; re-raise the first one's error."""
    tasks = [asyncio.create_task(coro) for coro in coros]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()
