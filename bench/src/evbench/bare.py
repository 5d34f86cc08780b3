"""The bare frame server: the reference cost of a heartbeat.

It does only what any server of the monitor protocol must do for a frame:
decode ``<STX><DATA><ETX><LRC>`` with :mod:`evproto.framing`, check the LRC,
parse the JSON object and answer ACK (NACK on a bad LRC). No authentication,
no state, no validation beyond JSON. The same monitor-fleet load run against it
and against the central gives the central's CPU per heartbeat as a ratio.

With ``--framed`` it serves through :class:`evproto.connection.FramedConnection`
instead (schema validation, delivery to a callback, no state): the cost of the
shared link code alone, to tell it apart from the central's own work.

``python -m evbench.bare --listen 127.0.0.1:3441 [--framed]`` runs it until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from dataclasses import asdict, dataclass

from evproto.config import parse_hostport
from evproto.connection import FramedConnection, Received
from evproto.errors import ConfigError, FrameTooLarge, MessageError
from evproto.framing import Control, Frame, FrameDecoder
from evproto.lifecycle import run_until_stopped
from evproto.logs import kv, setup_logging
from evproto.messages import CHANNELS
from evproto.vocabulary import Channel

__all__ = ["BareCounters", "BareFrameProtocol", "start_bare_server", "start_framed_server"]

log = logging.getLogger("evbench.bare")
_ACK = Control.ACK.byte
_NACK = Control.NACK.byte
_IDLE_TIMEOUT = 3.0


@dataclass(slots=True)
class BareCounters:
    connections: int = 0
    frames: int = 0
    bad_lrc: int = 0
    bad_json: int = 0
    too_large: int = 0


class BareFrameProtocol(asyncio.Protocol):
    """One link: ENQ -> ACK, each valid frame -> ACK, bad LRC -> NACK, EOT closes."""

    def __init__(self, counters: BareCounters) -> None:
        self._counters = counters
        self._decoder = FrameDecoder()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._counters.connections += 1

    def data_received(self, data: bytes) -> None:
        transport = self._transport
        assert transport is not None
        try:
            items = self._decoder.feed(data)
        except FrameTooLarge:
            self._counters.too_large += 1
            transport.close()
            return
        for item in items:
            if isinstance(item, Frame):
                transport.write(self._answer(item))
            elif item is Control.ENQ:
                transport.write(_ACK)
            elif item is Control.EOT:
                transport.close()
                return

    def _answer(self, frame: Frame) -> bytes:
        if not frame.valid:
            self._counters.bad_lrc += 1
            return _NACK
        self._counters.frames += 1
        try:
            parsed = json.loads(frame.data)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("type"), str):
            self._counters.bad_json += 1  # framed correctly, so ACKed; just not a message
        return _ACK

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None


async def start_bare_server(
    host: str, port: int, counters: BareCounters | None = None
) -> tuple[asyncio.Server, BareCounters]:
    counters = counters or BareCounters()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: BareFrameProtocol(counters), host, port, backlog=4096, reuse_address=True
    )
    return server, counters


class _CountingObserver:
    """evproto's LinkObserver: bad LRCs counted like the bare server counts them."""

    def __init__(self, counters: BareCounters) -> None:
        self._counters = counters

    def frame_in(self) -> None:
        pass

    def frame_out(self) -> None:
        pass

    def protocol_error(self, kind: str) -> None:
        if kind == "bad_lrc":
            self._counters.bad_lrc += 1
        elif kind == FrameTooLarge.code:
            self._counters.too_large += 1


async def start_framed_server(
    host: str,
    port: int,
    counters: BareCounters | None = None,
    *,
    idle_timeout: float = _IDLE_TIMEOUT,
) -> tuple[asyncio.Server, BareCounters]:
    """The same, through FramedConnection, delivering to a callback as the central does."""
    counters = counters or BareCounters()

    def count(received: Received) -> None:
        if isinstance(received, MessageError):
            counters.bad_json += 1
        else:
            counters.frames += 1

    async def on_link(conn: FramedConnection) -> None:
        counters.connections += 1
        conn.deliver_to(count)

    server = await FramedConnection.serve(
        on_link,
        host,
        port,
        accept=CHANNELS[Channel.CENTRAL_FROM_MONITOR],
        observer=_CountingObserver(counters),
        # an idle bound, as the central sets one (missed heartbeats x interval)
        idle_timeout=idle_timeout,
        backlog=4096,
    )
    return server, counters


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evbench.bare", description=__doc__)
    parser.add_argument("--listen", default="127.0.0.1:3441", help="HOST:PORT to serve")
    parser.add_argument(
        "--framed", action="store_true", help="serve through evproto's FramedConnection"
    )
    parser.add_argument(
        "--idle-timeout",
        type=float,
        default=_IDLE_TIMEOUT,
        help="seconds a framed link may stay silent (slow runs, e.g. under callgrind)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    try:
        host, port = parse_hostport(args.listen, what="--listen", default_host="127.0.0.1")
    except ConfigError as exc:
        parser.error(exc.message)
    setup_logging("evbench-bare", args.log_level)

    async def serve(stop: asyncio.Event) -> None:
        if args.framed:
            server, counters = await start_framed_server(host, port, idle_timeout=args.idle_timeout)
        else:
            server, counters = await start_bare_server(host, port)
        bound = server.sockets[0].getsockname()
        print(json.dumps({"listening": f"{bound[0]}:{bound[1]}"}), flush=True)
        await stop.wait()
        server.close()
        log.info("bare server stopped %s", kv(**asdict(counters)))

    return run_until_stopped(serve)


if __name__ == "__main__":
    sys.exit(main())
