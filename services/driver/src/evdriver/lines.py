"""Reading stdin line by line without blocking the event loop (the interactive menu)."""

from __future__ import annotations

import asyncio
import os
import stat
from typing import TextIO

__all__ = ["LineReader"]

_MAX_LINE = 4096  # longer lines are cut: nothing typed here needs more


class LineReader:
    """``await readline()`` -> a line without its newline, or None at end of input."""

    def __init__(self, stream: TextIO) -> None:
        self._fd = stream.fileno()
        self._buffer = b""
        self._eof = False
        mode = os.fstat(self._fd).st_mode
        # Regular files (and /dev/null) never block, and epoll refuses them.
        self._pollable = not (stat.S_ISREG(mode) or (stat.S_ISCHR(mode) and not stream.isatty()))

    async def readline(self) -> str | None:
        while b"\n" not in self._buffer and not self._eof:
            if self._pollable:
                await self._readable()
            chunk = os.read(self._fd, _MAX_LINE)
            if not chunk:
                self._eof = True
            self._buffer = (self._buffer + chunk)[-64 * _MAX_LINE :]
        if b"\n" in self._buffer:
            line, _, self._buffer = self._buffer.partition(b"\n")
        elif self._buffer:
            line, self._buffer = self._buffer, b""
        else:
            return None
        return line[:_MAX_LINE].decode("utf-8", "replace").rstrip("\r")

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def on_ready() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self._fd, on_ready)
        try:
            await ready
        finally:
            loop.remove_reader(self._fd)
