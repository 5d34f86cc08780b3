"""A TCP proxy the test controls, placed between a monitor and the central.

:meth:`LinkCutter.cut` is a network partition, not a crash: both processes
stay up and their sockets stay open, but no byte (nor a FIN) crosses until
:meth:`LinkCutter.restore`; what was in flight is then delivered, as TCP
would after its retransmissions. New connections made during the cut are
accepted but reach the central only after the restore. The proxy runs its own
event loop in a thread, so the (blocking) test code never stalls it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

__all__ = ["LinkCutter"]

_CHUNK = 65536


class LinkCutter:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.connections = 0  # accepted since the start
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._open = asyncio.Event()
        self._closing = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> LinkCutter:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self) -> None:
        """From now on nothing crosses, in either direction."""
        self._call(self._set_open(False))

    def restore(self) -> None:
        self._call(self._set_open(True))

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    # --- on the proxy's loop ------------------------------------------------------------

    def _call(self, coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _set_open(self, is_open: bool) -> None:
        if is_open:
            self._open.set()
        else:
            self._open.clear()

    async def _listen(self) -> None:
        self._open.set()
        self._server = await asyncio.start_server(self._accept, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._writers.add(client_w)
        central_w: asyncio.StreamWriter | None = None
        try:
            await self._open.wait()  # a connection made during a cut waits like a SYN would
            if self._closing:
                return
            try:
                central_r, central_w = await asyncio.open_connection(*self.target)
            except OSError:
                return
            self._writers.add(central_w)
            await asyncio.gather(self._pipe(client_r, central_w), self._pipe(central_r, client_w))
        finally:
            for writer in (client_w, central_w):
                if writer is not None:
                    writer.close()
                    self._writers.discard(writer)
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                data = await reader.read(_CHUNK)
                await self._open.wait()  # held here while the link is cut
                if not data or self._closing:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()

    async def _shutdown(self) -> None:
        """Every connection ends (held bytes are dropped), then the loop may stop."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        self._open.set()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=2.0)
