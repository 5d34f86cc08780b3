"""Hostile clients for test_e2e_hostile.py: each holds or floods one kind of
resource of the central, in one asyncio loop on a thread of the test process.

Nothing here checks anything: the test reads what the central counted and what
the legitimate traffic saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import socket
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from evproto.auth import registration_proof
from evproto.connection import FramedConnection
from evproto.framing import encode_frame
from evproto.kafka import KafkaSettings
from evproto.messages import CHANNELS, Authenticate, AuthResult, Challenge, Register
from evproto.topics import Topic
from evstack.kafka_probe import produce_records

__all__ = ["AttackLoop", "Attacks", "garbage_records", "raise_open_files_limit", "scaled"]

_SMALL_BUFFER = 4096


def raise_open_files_limit() -> None:
    """Thousands of idle sockets in this one process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class AttackLoop:
    """An asyncio loop on a thread: the test body stays synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


@dataclass
class Attacks:
    """What the hostile clients hold; released by :meth:`release`."""

    host: str
    monitor_port: int
    http_port: int
    held: list[asyncio.StreamWriter] = field(default_factory=list)
    sockets: list[socket.socket] = field(default_factory=list)
    connect_failures: int = 0

    async def idle_monitor_connections(self, count: int) -> None:
        """Connect to the monitor port and say nothing (no ENQ, no authentication)."""
        for _ in range(count):
            try:
                _reader, writer = await asyncio.open_connection(self.host, self.monitor_port)
            except OSError:
                self.connect_failures += 1
                continue
            self.held.append(writer)

    async def stuck_event_streams(self, count: int, token: str) -> None:
        """Open /api/events (with a valid read token) and never read a byte (a tiny
        receive buffer fills at once)."""
        loop = asyncio.get_running_loop()
        request = (
            f"GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _SMALL_BUFFER)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, (self.host, self.http_port))
                await loop.sock_sendall(sock, request)
            except OSError:
                self.connect_failures += 1
                sock.close()
                continue
            self.sockets.append(sock)

    async def slow_headers(self, count: int, pause: float) -> int:
        """Send a request's headers a few bytes at a time; how many the central closed."""

        async def one() -> bool:
            try:
                reader, writer = await asyncio.open_connection(self.host, self.http_port)
            except OSError:
                return False
            try:
                for chunk in (b"GET /healthz HTTP/1.1\r\n", b"Host: x\r\n", b"X-Slow: 1\r\n") * 50:
                    writer.write(chunk)
                    await writer.drain()
                    await asyncio.sleep(pause)
            except OSError:
                return True  # closed under us
            finally:
                writer.close()
            return reader.at_eof()

        closed = await asyncio.gather(*(one() for _ in range(count)))
        return sum(closed)

    async def authenticated_monitor(self, cp_id: str, registration_token: str) -> FramedConnection:
        """A monitor link registered as a new CP (before the address's pending slots fill)."""
        conn = await FramedConnection.connect(
            self.host, self.monitor_port, accept=CHANNELS["monitor<-central"], timeout=5.0
        )
        challenge = await conn.request(Authenticate(cp_id=cp_id))
        assert isinstance(challenge, Challenge), challenge
        proof = registration_proof(registration_token, challenge.nonce, cp_id)
        result = await conn.request(Register(cp_id=cp_id, location="nowhere", proof=proof))
        assert isinstance(result, AuthResult) and result.accepted, result
        return conn

    async def flood(self, conn: FramedConnection, frames: int) -> bool:
        """Send ``frames`` bogus frames; True if the central closed the link first."""
        transport = conn.transport
        assert transport is not None
        bogus = [encode_frame(b"not json"), encode_frame(b'{"type":"bogus"}')]
        try:
            for sent in range(frames):
                if conn.closed:
                    return sent < frames
                transport.write(bogus[sent % 2])
                if sent % 100 == 0:
                    await asyncio.sleep(0)  # let the close arrive
            async with asyncio.timeout(5):
                while not conn.closed:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            return False
        finally:
            await conn.abort()
        return True

    async def release(self) -> None:
        for writer in self.held:
            writer.close()
        for sock in self.sockets:
            sock.close()
        self.held.clear()
        self.sockets.clear()


def garbage_records(bootstrap: str, count: int, keys: list[str]) -> int:
    """``count`` records no service can use, spread over every topic and the given
    keys: bytes, empty and null values, JSON of the wrong shape, lone surrogates,
    values far out of range, and oversized ones. Returns how many were sent."""
    rng = random.Random(15)
    big = json.dumps({"type": "ticket", "reason": "x" * 200_000}).encode()
    shapes: list[bytes | None] = [
        None,
        b"",
        b"\x00\xff\xfe garbage",
        b"null",
        b"[]",
        b'{"type": 7}',
        b'{"type": "ticket", "v": 1, "reason": "\\ud800"}',
        b'{"type": "telemetry", "v": 1, "seq": 9223372036854775807, "kwh": 1e308}',
        b'{"type": "supply_request", "request_id": "r", "price": ' + b"9" * 4000 + b"}",
        b"{" * 10_000,
        big,
    ]
    topics = list(Topic)
    records = [
        (topics[n % len(topics)], rng.choice(keys), shapes[n % len(shapes)]) for n in range(count)
    ]
    with contextlib.suppress(Exception):
        produce_records(KafkaSettings(bootstrap, client_id="e2e-hostile"), records, 30)
    return count


def scaled(name: str, default: int) -> int:
    """A count of the hostile test, raised by its long mode (``EV_HOSTILE_<NAME>``)."""
    return int(os.environ.get(f"EV_HOSTILE_{name.upper()}", default))
