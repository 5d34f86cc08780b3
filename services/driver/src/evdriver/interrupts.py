"""Ctrl-C and SIGTERM for the commands that follow a session.

While a session is followed: the first Ctrl-C asks the central to stop the
supply and waits briefly for the ticket, a second one (or SIGTERM) leaves at
once. Anywhere else a signal cancels the command (exit 130).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Iterator
from typing import Protocol

__all__ = ["Interrupts"]


class Stoppable(Protocol):
    def request_stop(self) -> None: ...

    def abandon(self) -> None: ...


class Interrupts:
    def __init__(self) -> None:
        self.interrupted = False
        self._following: Stoppable | None = None
        self._presses = 0
        self._task: asyncio.Task[int] | None = None

    def install(self, task: asyncio.Task[int]) -> None:
        self._task = task
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, self._on_sigint)
        loop.add_signal_handler(signal.SIGTERM, self._on_sigterm)

    @contextlib.contextmanager
    def following(self, session: Stoppable) -> Iterator[None]:
        self._following, self._presses = session, 0
        try:
            yield
        finally:
            self._following = None

    def _on_sigint(self) -> None:
        if self._following is None:
            self._cancel()
            return
        self._presses += 1
        if self._presses == 1:
            self._following.request_stop()
        else:
            self._following.abandon()

    def _on_sigterm(self) -> None:
        if self._following is None:
            self._cancel()
        else:
            self._following.abandon()

    def _cancel(self) -> None:
        self.interrupted = True
        if self._task is not None:
            self._task.cancel()
