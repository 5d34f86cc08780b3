"""Answering input a peer should not have sent: counted, logged once, ErrorReply."""

from __future__ import annotations

import contextlib
import logging

from evproto.connection import FramedConnection
from evproto.errors import LinkError, ProtocolError
from evproto.logs import kv
from evproto.messages import ErrorReply

from evmonitor.metrics import MonitorMetrics
from evmonitor.peers import Peer

__all__ = ["refuse"]

log = logging.getLogger("evmonitor.protocol")


async def refuse(
    conn: FramedConnection,
    error: ProtocolError,
    *,
    cp_id: str,
    peer: Peer,
    metrics: MonitorMetrics,
    count_as: str | None,
) -> None:
    """Tell the peer what was wrong and carry on; the link stays open.

    ``count_as``: the metric kind to count, None when the connection already
    counted it (a frame that is not a valid message).
    """
    if count_as is not None:
        metrics.protocol_error(count_as)
    log.warning(
        "refused input %s", kv(cp=cp_id, peer=peer.value, error=error.code, detail=error.message)
    )
    with contextlib.suppress(LinkError):
        await conn.send(ErrorReply(code=error.code[:64], message=error.message[:512]))
