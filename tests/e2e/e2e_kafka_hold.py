"""A TCP proxy in front of the broker that can hold one client's Produce requests.

The broker advertises the proxy's address, so after the bootstrap every Kafka
connection of every process crosses it. :meth:`ProduceHold.hold` makes the
proxy keep back, from then on, every Produce request (and whatever follows it
on that connection) sent by clients whose ``client.id`` is the given one: the
broker never sees those records, and their producer never gets its acks — what
a crash between "handled" and "acknowledged" looks like from outside. Held bytes
are dropped when their client's connection ends. Other traffic (the client's
own fetches and commits, every other process) flows.

Kafka request framing: an int32 size, then api_key (int16), api_version
(int16), correlation id (int32) and client id (int16 length + bytes).
"""

from __future__ import annotations

import asyncio
import struct
import threading
from collections.abc import Coroutine
from typing import Any

__all__ = ["ProduceHold"]

_PRODUCE = 0
_CHUNK = 65536


class ProduceHold:
    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self.held_requests = 0
        self._client_id: bytes | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> ProduceHold:
        self._thread.start()
        self._call(self._listen())
        return self

    def hold(self, client_id: str) -> None:
        """From now on, keep back the Produce requests of ``client_id``."""
        self._client_id = client_id.encode()

    def release(self) -> None:
        """New requests flow again (connections already holding stay held)."""
        self._client_id = None

    def close(self) -> None:
        if self._thread.is_alive():
            self._call(self._shutdown())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _call(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.close()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, broker_w}
        back = asyncio.create_task(self._pipe(broker_r, client_w))
        try:
            await self._requests(client_r, broker_w)
        finally:
            back.cancel()
            for writer in (client_w, broker_w):
                writer.close()
                self._writers.discard(writer)

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Forward whole requests; once one is held, hold the rest of this connection."""
        holding = False
        while True:
            try:
                size = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">i", size)[0])
            except (asyncio.IncompleteReadError, ConnectionError):
                return  # the client went away: whatever was held is dropped with it
            if not holding and self._client_id is not None:
                api_key = struct.unpack(">h", body[:2])[0]
                id_len = struct.unpack(">h", body[8:10])[0]
                client_id = body[10 : 10 + id_len] if id_len > 0 else b""
                holding = api_key == _PRODUCE and client_id == self._client_id
            if holding:
                self.held_requests += 1
                continue
            writer.write(size + body)
            await writer.drain()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
