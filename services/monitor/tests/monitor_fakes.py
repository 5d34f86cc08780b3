"""Fake peers for the monitor's tests: real TCP servers speaking the real framing.

``FakeEngine`` plays the engine (answers Info and Health; can be switched to
KO, to silent, or killed and restarted on the same port). ``FakeCentral``
plays the central (issues challenges, verifies proofs with evproto.auth,
registers CPs, records every Status). Imported by name (``conftest.py`` puts
this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import ssl
from collections.abc import AsyncIterator

from evproto import auth
from evproto.connection import FramedConnection
from evproto.errors import LinkError
from evproto.messages import (
    CHANNELS,
    Authenticate,
    AuthResult,
    Challenge,
    ChallengeResponse,
    EngineInfo,
    HealthAnswer,
    HealthRequest,
    InfoRequest,
    PriceUpdate,
    Register,
    Status,
)
from evproto.schema import Message, MsgType
from evproto.states import Health

CP_ID = "CP-0"
TOKEN = "registration-token-for-tests"
HOST = "127.0.0.1"


class _Server:
    """A TCP server on a fixed port that can be killed (connections cut) and restarted."""

    accepts: frozenset[MsgType] = frozenset(MsgType)

    def __init__(self) -> None:
        self.port = 0
        self.ssl_context: ssl.SSLContext | None = None
        self._server: asyncio.Server | None = None
        self.conns: list[FramedConnection] = []  # every link opened
        self.links: list[FramedConnection] = []  # the ones serving (after any login)
        self.close_reasons: list[str] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    async def start(self) -> None:
        self._server = await FramedConnection.serve(
            self._on_link, HOST, self.port, accept=self.accepts, ssl_context=self.ssl_context
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def _on_link(self, conn: FramedConnection) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.conns.append(conn)
        try:
            await self.serve(conn)
        except LinkError:
            pass
        finally:
            self._tasks.discard(task)
            await conn.abort()

    async def serve(self, conn: FramedConnection) -> None:
        raise NotImplementedError

    async def messages(self, conn: FramedConnection) -> AsyncIterator[Message]:
        """Every message until the link closes; the close reason is kept."""
        while True:
            try:
                yield await conn.recv(timeout=60)
            except LinkError:
                self.close_reasons.append(conn.close_reason)
                return

    @property
    def link(self) -> FramedConnection:
        return self.links[-1]

    def send_raw(self, data: bytes) -> None:
        """Bytes straight onto the newest connection, past the framing."""
        transport = self.conns[-1].transport
        assert transport is not None
        transport.write(data)

    async def kill(self) -> None:
        """Like a crash: stop listening and cut every connection without EOT."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), 5)


class SilentServer(_Server):
    """Accepts connections and never answers; with ``handshake`` it ACKs the ENQ (and
    every frame) first, then stays silent."""

    def __init__(self, *, handshake: bool) -> None:
        super().__init__()
        self.handshake = handshake
        self.accepted = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        if self.handshake:
            await super().start()
            return
        self._server = await asyncio.start_server(self._mute, HOST, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _mute(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.append(writer)
        with contextlib.suppress(OSError):
            await reader.read()  # until the monitor gives up
        writer.close()

    async def serve(self, conn: FramedConnection) -> None:
        self.accepted += 1
        while True:
            await conn.recv(timeout=60)

    async def kill(self) -> None:
        for writer in self._writers:
            writer.transport.abort()
        await super().kill()


class EngineMode(enum.Enum):
    OK = "ok"
    KO = "ko"
    SILENT = "silent"  # frames ACKed, requests never answered
    STALE_FIRST = "stale_first"  # an old seq (KO) before each real answer (OK)


class FakeEngine(_Server):
    Mode = EngineMode

    def __init__(self, cp_id: str = CP_ID, location: str = "Bay 7", price: float = 0.25) -> None:
        super().__init__()
        self.info = EngineInfo(cp_id=cp_id, location=location, price=price, power_kw=22.0)
        self.mode = EngineMode.OK
        self.received: list[Message] = []

    def notices(self, kind: type[Message]) -> list[Message]:
        return [m for m in self.received if isinstance(m, kind)]

    accepts = CHANNELS["engine<-monitor"]

    async def serve(self, conn: FramedConnection) -> None:
        self.links.append(conn)
        async for msg in self.messages(conn):
            self.received.append(msg)
            if isinstance(msg, InfoRequest):
                await conn.send(self.info)
            elif isinstance(msg, HealthRequest):
                await self._answer(conn, msg.seq)

    async def _answer(self, conn: FramedConnection, seq: int) -> None:
        cp_id = self.info.cp_id
        if self.mode is EngineMode.SILENT:
            return
        if self.mode is EngineMode.STALE_FIRST:
            await conn.send(HealthAnswer(cp_id=cp_id, seq=seq - 1, health=Health.KO))
        health = Health.KO if self.mode is EngineMode.KO else Health.OK
        reason = "simulated fault" if health is Health.KO else ""
        await conn.send(HealthAnswer(cp_id=cp_id, seq=seq, health=health, reason=reason))


class FakeCentral(_Server):
    def __init__(self, token: str = TOKEN, price: float = 0.42) -> None:
        super().__init__()
        self.token = token
        self.price = price
        self.stored_keys: dict[str, str] = {}
        self.statuses: list[Status] = []
        self.received: list[Message] = []  # after login
        self.logins: list[str] = []  # "authenticated", "registered", "rejected"
        self.status_interval: float | None = None  # what AuthResult asks of the monitor

    def last_health(self) -> Health | None:
        return self.statuses[-1].health if self.statuses else None

    accepts = CHANNELS["central<-monitor"]

    async def serve(self, conn: FramedConnection) -> None:
        hello = await conn.recv()
        assert isinstance(hello, Authenticate)
        cp_id, nonce = hello.cp_id, auth.new_nonce()
        await conn.send(Challenge(nonce=nonce, registered=bool(self.stored_keys.get(cp_id))))
        answer = await conn.recv()
        result = self._judge(cp_id, nonce, answer)
        if result.accepted:
            result = dataclasses.replace(result, status_interval=self.status_interval)
        await conn.send(result)
        if not result.accepted:
            self.logins.append("rejected")
            await conn.close("rejected")
            return
        self.links.append(conn)
        async for msg in self.messages(conn):
            self.received.append(msg)
            if isinstance(msg, Status):
                self.statuses.append(msg)

    def _judge(self, cp_id: str, nonce: str, answer: Message) -> AuthResult:
        if isinstance(answer, ChallengeResponse):
            stored = self.stored_keys.get(cp_id, "")
            if auth.verify_client_proof(stored, answer.proof, nonce, cp_id):
                self.logins.append("authenticated")
                return AuthResult(cp_id=cp_id, accepted=True, price=self.price)
            return AuthResult(cp_id=cp_id, accepted=False, reason="bad proof")
        assert isinstance(answer, Register)
        if not self.token or not auth.verify_registration_proof(
            self.token, answer.proof, nonce, cp_id
        ):
            return AuthResult(cp_id=cp_id, accepted=False, reason="bad registration token")
        if self.stored_keys.get(cp_id):  # as the central: the token cannot re-key a known CP
            reason = f"{cp_id} is already registered (evctl reset {cp_id})"
            return AuthResult(cp_id=cp_id, accepted=False, reason=reason)
        secret = auth.new_secret()
        self.stored_keys[cp_id] = auth.stored_key(secret)
        self.logins.append("registered")
        sealed = auth.seal_secret(secret, self.token, nonce, cp_id)
        return AuthResult(cp_id=cp_id, accepted=True, price=self.price, sealed_secret=sealed)

    async def push_price(self, price: float, cp_id: str = CP_ID) -> None:
        await self.link.send(PriceUpdate(cp_id=cp_id, price=price))
