"""What comes in from a peer: valid messages pass; anything else is refused.

Refused input is counted, logged once, answered with an ``ErrorReply``, and the
link stays open; the monitor never crashes on what a peer sends.
"""

from __future__ import annotations

import contextlib
import logging

from evproto.connection import FramedConnection
from evproto.errors import LinkClosed, LinkError, MessageError, ProtocolError
from evproto.logs import kv
from evproto.messages import ErrorReply
from evproto.schema import Message
from evproto.vocabulary import LinkErrorKind

from evmonitor.metrics import MonitorMetrics
from evmonitor.peers import Peer

__all__ = ["Inbound"]

log = logging.getLogger("evmonitor.protocol")


class Inbound:
    """The input side of one peer's links."""

    def __init__(self, peer: Peer, cp_id: str, metrics: MonitorMetrics) -> None:
        self._peer = peer
        self._cp_id = cp_id
        self._metrics = metrics

    async def receive(self, conn: FramedConnection, timeout: float) -> Message:
        """The next valid message; frames that are not one are refused and skipped.

        Raises ``LinkTimeout`` when nothing came in time and ``LinkClosed`` when the
        link is gone (an oversized frame closes it too).
        """
        while True:
            try:
                return await conn.recv(timeout)
            except MessageError as exc:
                await self.refuse(conn, exc, count_as=None)
            except ProtocolError as exc:
                raise LinkClosed(f"the {self._peer} broke the framing: {exc.message}") from None

    async def refuse(
        self, conn: FramedConnection, error: ProtocolError, *, count_as: LinkErrorKind | None
    ) -> None:
        """Tell the peer what was wrong and carry on.

        ``count_as``: the metric kind to count, None when the connection already
        counted it (a frame that is not a valid message).
        """
        if count_as is not None:
            self._metrics.protocol_error(count_as)
        log.warning(
            "refused input %s",
            kv(cp=self._cp_id, peer=self._peer.value, error=error.code, detail=error.message),
        )
        with contextlib.suppress(LinkError):
            await conn.send(ErrorReply(code=error.code[:64], message=error.message[:512]))

    def unexpected(self, got: Message, wanted: str) -> None:
        """A valid message at the wrong moment: counted and logged, not answered."""
        self._metrics.protocol_error(LinkErrorKind.UNEXPECTED_MESSAGE)
        log.warning(
            "unexpected message %s",
            kv(cp=self._cp_id, peer=self._peer.value, got=got.TYPE.value, wanted=wanted),
        )

    def peer_refused(self, reply: ErrorReply) -> None:
        """The peer answered one of ours with an ErrorReply."""
        self._metrics.protocol_error(LinkErrorKind.ERROR_REPLY)
        log.warning(
            "%s refused a message %s",
            self._peer.value,
            kv(cp=self._cp_id, peer=self._peer.value, code=reply.code, detail=reply.message),
        )
