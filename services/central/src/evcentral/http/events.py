"""Server-Sent Events for the dashboard: ``event: cp`` (a CP view) and ``event: log``.

CP changes are coalesced: a CP that changes many times in a flush interval
is sent once, with its latest view, serialised once for every client of a
role (the operator's clients see driver ids, viewers' see pseudonyms). A
client that falls too far behind, or does not accept a write within the write
timeout, is dropped; the dashboard reconnects and starts again from a fresh
snapshot. At most ``max_clients`` streams are open; more are answered 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from evcentral.http.access import Access, Role
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

    __slots__ = ("closed", "pending", "role", "wake")

    def __init__(self, role: Role) -> None:
        self.role = role
        self.pending: list[bytes] = []
        self.wake = asyncio.Event()
        self.closed = False

    def put(self, chunk: bytes) -> bool:
        """Queue ``chunk``; False if the client is too far behind and was dropped."""
        if self.closed:
            return True
        if len(self.pending) >= _CLIENT_BACKLOG:  # too slow: drop it, it reconnects
            self.close()
            return False
        self.pending.append(chunk)
        self.wake.set()
        return True

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


def _not_counted(_reason: str) -> None:
    pass


class EventHub:
    def __init__(
        self,
        registry: Registry,
        journal: Journal,
        access: Access,
        *,
        max_clients: int = 100,
        write_timeout: float = 10.0,
        capped: Callable[[str], None] = _not_counted,
    ) -> None:
        self._registry = registry
        self._journal = journal
        self._access = access
        self.max_clients = max_clients
        self.write_timeout = write_timeout
        self.capped = capped  # told the reason whenever a cap refuses or drops a client
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
            self._broadcast(lambda role: _event("log", self._entry(role, entry).to_json()))

    def _broadcast(self, chunk_for: Callable[[Role], bytes]) -> None:
        chunks: dict[Role, bytes] = {}  # built once per role, only for roles listening
        for client in self._clients:
            if client.role not in chunks:
                chunks[client.role] = chunk_for(client.role)
            if not client.put(chunks[client.role]):
                self.capped("event_client_behind")

    def _cp(self, role: Role, cp: ChargingPoint) -> bytes:
        view = cp_view(cp)
        return _event("cp", view if role is Role.OPERATOR else self._access.redact(view))

    def _entry(self, role: Role, entry: LogEntry) -> LogEntry:
        return entry if role is Role.OPERATOR else self._access.redact_entry(entry)

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
        found = (self._registry.get(cp_id) for cp_id in sorted(dirty))
        cps = [cp for cp in found if cp is not None]
        self._broadcast(lambda role: _joined(self._cp(role, cp) for cp in cps))

    def snapshot(self, role: Role) -> bytes:
        cps = sorted(self._registry, key=lambda cp: cp.cp_id)
        entries = (self._entry(role, entry) for entry in self._journal.recent)
        logs = (_event("log", entry.to_json()) for entry in entries)
        return _joined(self._cp(role, cp) for cp in cps) + _joined(logs)

    def subscribe(self, role: Role) -> _Client | None:
        """A new stream's queue, or None when ``max_clients`` are open."""
        if len(self._clients) >= self.max_clients:
            self.capped("event_clients")
            return None
        client = _Client(role)
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


def sse_handler(hub: EventHub, reader: Callable[[web.Request], Role]) -> Callable[..., Any]:
    """The stream; ``reader`` answers 401 (before anything is sent) or names the role."""

    async def events(request: web.Request) -> web.StreamResponse:
        role = reader(request)
        client = hub.subscribe(role)
        if client is None:
            raise web.HTTPServiceUnavailable(
                text=json.dumps({"error": f"too many event streams (at most {hub.max_clients})"}),
                content_type="application/json",
                headers={"Retry-After": "10"},
            )
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        try:
            async with asyncio.timeout(hub.write_timeout):
                await response.prepare(request)
                await response.write(b"retry: 2000\n\n" + hub.snapshot(role))
            while (chunk := await client.take(_KEEPALIVE)) is not None:
                async with asyncio.timeout(hub.write_timeout):
                    await response.write(chunk)
        except TimeoutError:  # not reading: its buffers are full
            hub.capped("event_client_slow")
            log.debug("event stream dropped: the client accepts no writes")
            if request.transport is not None:
                request.transport.abort()
        except (ConnectionError, RuntimeError) as exc:  # the browser went away
            log.debug("event stream ended: %s", exc)
        finally:
            hub.unsubscribe(client)
        return response

    return events
