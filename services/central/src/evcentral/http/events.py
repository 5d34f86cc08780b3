"""Server-Sent Events for the dashboard: ``event: cp`` (a CP view) and ``event: log``.

CP changes are coalesced: a CP that changes many times in a flush interval
is sent once, with its latest view, serialised once for every client. A
client that falls too far behind is dropped; its EventSource reconnects and
starts again from a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from evcentral.journal import Journal, LogEntry
from evcentral.registry import ChargingPoint, Registry
from evcentral.views import cp_view

__all__ = ["EventHub", "sse_handler"]

log = logging.getLogger("evcentral.http")

_FLUSH_INTERVAL = 0.25  # at most four pushes a second per CP
_KEEPALIVE = 15.0
_CLIENT_BACKLOG = 1000  # chunks; beyond this a client is too slow and is dropped


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class _Client:
    """One dashboard's pending chunks; written out together at its next wake-up."""

    __slots__ = ("closed", "pending", "wake")

    def __init__(self) -> None:
        self.pending: list[bytes] = []
        self.wake = asyncio.Event()
        self.closed = False

    def put(self, chunk: bytes) -> None:
        if self.closed:
            return
        if len(self.pending) >= _CLIENT_BACKLOG:  # too slow: drop it, it reconnects
            self.close()
            return
        self.pending.append(chunk)
        self.wake.set()

    def close(self) -> None:
        self.closed = True
        self.pending.clear()
        self.wake.set()

    async def take(self, timeout: float) -> bytes | None:
        """What is pending (a keep-alive comment after ``timeout``), or None once closed."""
        if not self.pending and not self.closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self.wake.wait()
        self.wake.clear()
        if self.closed:
            return None
        if not self.pending:
            return b": keep-alive\n\n"
        chunk = b"".join(self.pending)
        self.pending.clear()
        return chunk


class EventHub:
    def __init__(self, registry: Registry, journal: Journal) -> None:
        self._registry = registry
        self._journal = journal
        self._clients: set[_Client] = set()
        self._dirty: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        journal.subscribe(self._on_log)

    @property
    def clients(self) -> int:
        return len(self._clients)

    def mark(self, cp: ChargingPoint) -> None:
        """The CP's tile may have changed; it is sent at the next flush."""
        if self._clients:
            self._dirty.add(cp.cp_id)

    def _on_log(self, entry: LogEntry) -> None:
        if self._clients:
            self._broadcast(_event("log", entry.to_json()))

    def _broadcast(self, chunk: bytes) -> None:
        for client in self._clients:
            client.put(chunk)

    def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="sse-flush")

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(_FLUSH_INTERVAL)
            self.flush()

    def flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        cps = (self._registry.get(cp_id) for cp_id in sorted(dirty))
        self._broadcast(_joined(_event("cp", cp_view(cp)) for cp in cps if cp is not None))

    def snapshot(self) -> bytes:
        cps = sorted(self._registry, key=lambda cp: cp.cp_id)
        logs = (_event("log", entry.to_json()) for entry in self._journal.recent)
        return _joined(_event("cp", cp_view(cp)) for cp in cps) + _joined(logs)

    def subscribe(self) -> _Client:
        client = _Client()
        self._clients.add(client)
        return client

    def unsubscribe(self, client: _Client) -> None:
        self._clients.discard(client)

    async def close(self) -> None:
        """End every stream (shutdown) and the flush task."""
        for client in self._clients:
            client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def _joined(chunks: Iterable[bytes]) -> bytes:
    return b"".join(chunks)


def sse_handler(hub: EventHub) -> Callable[[web.Request], Any]:
    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        client = hub.subscribe()
        try:
            await response.write(b"retry: 2000\n\n" + hub.snapshot())
            while (chunk := await client.take(_KEEPALIVE)) is not None:
                await response.write(chunk)
        except (ConnectionError, RuntimeError) as exc:  # the browser went away
            log.debug("event stream ended: %s", exc)
        finally:
            hub.unsubscribe(client)
        return response

    return events
