"""Heartbeat-to-dashboard latency: a CP's health flip until the central's SSE stream shows it.

A :class:`DashboardWatcher` reads ``GET /api/events`` and resolves whoever
waits for a CP to reach a state. A :class:`ProbeRunner` flips sample CPs KO
then OK through their real monitor links and times each flip from the moment
the status frame was written to the moment the ``event: cp`` with the new state
arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random

import aiohttp
from evproto.states import CpState, Health

from evbench.link import MonitorLink

__all__ = ["DashboardWatcher", "ProbeCounters", "ProbeRunner"]

log = logging.getLogger("evbench.sse")
_MAX_LINE = 1 << 20


class DashboardWatcher:
    """Follows the central's Server-Sent Events and tells when a CP reaches a state."""

    def __init__(self, http_url: str, token: str) -> None:
        self.url = http_url.rstrip("/") + "/api/events"
        self.token = token  # the viewer token: the stream needs one
        self.events = 0
        self.bad_events = 0
        self.connected = asyncio.Event()
        self._waiters: dict[str, tuple[CpState, asyncio.Future[float]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self, timeout: float = 15.0) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout),
            read_bufsize=1 << 16,
        )
        self._task = asyncio.create_task(self._follow(), name="sse")
        await asyncio.wait_for(self.connected.wait(), timeout)

    async def _follow(self) -> None:
        assert self._session is not None
        while True:
            try:
                headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {self.token}"}
                async with self._session.get(self.url, headers=headers) as response:
                    response.raise_for_status()
                    self.connected.set()
                    await self._read(response.content)
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("SSE stream failed, reconnecting error=%r", exc)
            await asyncio.sleep(0.5)

    async def _read(self, content: aiohttp.StreamReader) -> None:
        event, data = "message", []
        loop = asyncio.get_running_loop()
        while True:
            raw = await content.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif not line:
                if data:
                    self._dispatch(event, "\n".join(data), loop.time())
                event, data = "message", []

    def _dispatch(self, event: str, data: str, at: float) -> None:
        self.events += 1
        if event != "cp" or not self._waiters:
            return
        try:
            tile = json.loads(data)
            cp_id, state = tile["cp_id"], CpState(tile["state"])
        except (ValueError, KeyError, TypeError):
            self.bad_events += 1
            return
        waiter = self._waiters.get(cp_id)
        if waiter is not None and waiter[0] is state and not waiter[1].done():
            waiter[1].set_result(at)

    def expect(self, cp_id: str, state: CpState) -> asyncio.Future[float]:
        """A future resolved with the loop time the CP's next event in ``state`` arrived."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiters[cp_id] = (state, fut)
        return fut

    def forget(self, cp_id: str) -> None:
        self._waiters.pop(cp_id, None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()


class ProbeCounters:
    __slots__ = ("flips", "seen", "timeouts")

    def __init__(self) -> None:
        self.flips = 0
        self.seen = 0
        self.timeouts = 0


class ProbeRunner:
    """Flips sample CPs KO -> OK, each flip after a random pause of up to ``every`` seconds.

    The pause is random so flips do not lock onto the phase of the central's
    periodic SSE flush (a flip sent right after one flush always waits a full
    interval for the next, which would measure the interval, not the latency).
    """

    def __init__(
        self,
        watcher: DashboardWatcher,
        links: list[MonitorLink],
        *,
        workers: int = 4,
        every: float = 0.5,
        timeout: float = 10.0,
    ) -> None:
        self.watcher = watcher
        self.links = links
        self.workers = workers
        self.every = every
        self.timeout = timeout
        self.counters = ProbeCounters()
        self.latencies: list[float] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        for w in range(self.workers):
            mine = self.links[w :: self.workers]
            if mine:
                self._tasks.append(asyncio.create_task(self._run(mine), name=f"probe-{w}"))

    async def _run(self, links: list[MonitorLink]) -> None:
        i = 0
        while not self._stopping:
            # a closed link is skipped; with none left the worker ends (never a busy loop)
            live = [link for link in links if not link.closed]
            if not live:
                return
            link = live[i % len(live)]
            i += 1
            await asyncio.sleep(random.uniform(0.0, self.every))
            await self._flip(link, Health.KO, CpState.BROKEN_DOWN)
            await asyncio.sleep(random.uniform(0.0, self.every))
            await self._flip(link, Health.OK, CpState.ACTIVE)

    async def _flip(self, link: MonitorLink, health: Health, state: CpState) -> None:
        seen = self.watcher.expect(link.cp_id, state)
        link.change_health(health)
        self.counters.flips += 1
        try:
            arrived = await asyncio.wait_for(seen, self.timeout)
        except TimeoutError:
            self.counters.timeouts += 1
            return
        finally:
            self.watcher.forget(link.cp_id)
        self.counters.seen += 1
        self.latencies.append(max(0.0, arrived - link.change_written_at))

    async def stop(self) -> None:
        # the flag too: on Python 3.11 wait_for can swallow a cancel that races its
        # result, and a worker that missed it would run on (the step never drained)
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in self.links:  # leave every probe CP healthy
            if link.health is not Health.OK and not link.closed:
                link.change_health(Health.OK)
