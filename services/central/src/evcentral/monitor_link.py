"""One authenticated monitor connection."""

from __future__ import annotations

import asyncio
import logging

from evproto.connection import FramedConnection
from evproto.errors import EvError
from evproto.logs import kv
from evproto.messages import ErrorReply
from evproto.schema import Message

__all__ = ["MonitorLink"]

log = logging.getLogger("evcentral.monitors")


class MonitorLink:
    """An authenticated connection of one CP's monitor."""

    __slots__ = ("_error_in_flight", "_error_next", "_tasks", "conn", "cp_id")

    def __init__(self, cp_id: str, conn: FramedConnection) -> None:
        self.cp_id = cp_id
        self.conn = conn
        self._tasks: set[asyncio.Task[None]] = set()
        self._error_in_flight = False
        self._error_next: ErrorReply | None = None

    def push(self, msg: Message) -> None:
        """Send without waiting (the caller is not the link's task)."""
        self._spawn(self._send(msg))

    def reply_error(self, reply: ErrorReply) -> None:
        """Answer bad input: one reply in flight, and at most the latest one waiting
        behind it; a peer that floods bad frames costs no task or memory per frame."""
        if self.conn.closed:
            return
        if self._error_in_flight:
            self._error_next = reply
            return
        self._error_in_flight = True
        self._spawn(self._send_errors(reply))

    async def _send_errors(self, reply: ErrorReply | None) -> None:
        try:
            while reply is not None and not self.conn.closed:
                await self._send(reply)
                reply, self._error_next = self._error_next, None
        finally:
            self._error_in_flight = False
            self._error_next = None

    def close_soon(self, reason: str) -> None:
        self._spawn(self.conn.close(reason))

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, msg: Message) -> None:
        try:
            await self.conn.send(msg)
        except EvError as exc:
            log.warning("push to monitor failed %s", kv(cp=self.cp_id, error=exc.message))
