"""Fake peers for the monitor's tests: real TCP servers speaking the real framing.

``FakeEngine`` plays the engine (answers Info and Health; can be switched to
KO, to silent, or killed and restarted on the same port). ``FakeCentral``
plays the central (issues challenges, verifies proofs with evproto.auth,
registers CPs, records every Status).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import os
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from evmonitor import Monitor, MonitorSettings
from evproto import auth
from evproto.connection import FramedConnection
from evproto.errors import LinkError
from evproto.framing import encode_frame
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
from evstack.waiting import eventually as _eventually

CP_ID = "CP-0"
TOKEN = "registration-token-for-tests"
HOST = "127.0.0.1"


async def eventually(
    condition: Callable[[], bool], timeout: float = 5.0, what: str = "condition"
) -> None:
    """evproto's deadline wait, with this suite's shorter default timeout."""
    await _eventually(condition, timeout, what)


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

    def last_health(self) -> Health | None:
        return self.statuses[-1].health if self.statuses else None

    accepts = CHANNELS["central<-monitor"]

    async def serve(self, conn: FramedConnection) -> None:
        hello = await conn.recv()
        assert isinstance(hello, Authenticate)
        cp_id, nonce = hello.cp_id, auth.new_nonce()
        await conn.send(Challenge(nonce=nonce, registered=cp_id in self.stored_keys))
        answer = await conn.recv()
        result = self._judge(cp_id, nonce, answer)
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
        secret = auth.new_secret()
        self.stored_keys[cp_id] = auth.stored_key(secret)
        self.logins.append("registered")
        sealed = auth.seal_secret(secret, self.token, nonce, cp_id)
        return AuthResult(cp_id=cp_id, accepted=True, price=self.price, sealed_secret=sealed)

    async def push_price(self, price: float, cp_id: str = CP_ID) -> None:
        await self.link.send(PriceUpdate(cp_id=cp_id, price=price))


# --- fixtures ---------------------------------------------------------------------------


@dataclass
class RunningMonitor:
    monitor: Monitor
    stop: asyncio.Event
    task: asyncio.Task[None]

    def metric(self, name: str, **labels: str) -> float:
        value = self.monitor.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def shutdown(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 10)


@pytest.fixture
async def engine() -> AsyncIterator[FakeEngine]:
    fake = FakeEngine()
    await fake.start()
    yield fake
    await fake.kill()


@pytest.fixture
async def central() -> AsyncIterator[FakeCentral]:
    fake = FakeCentral()
    await fake.start()
    yield fake
    await fake.kill()


@pytest.fixture
async def silent_server() -> AsyncIterator[Callable[..., Awaitable[SilentServer]]]:
    """``await silent_server(handshake=...)``: a peer that accepts and never answers."""
    made: list[SilentServer] = []

    async def start(*, handshake: bool) -> SilentServer:
        made.append(SilentServer(handshake=handshake))
        await made[-1].start()
        return made[-1]

    yield start
    for server in made:
        await server.kill()


@dataclass
class Rig:
    """A fake engine, a fake central, a state dir, and monitors run in this process."""

    engine: FakeEngine
    central: FakeCentral
    state_dir: Path
    running: list[RunningMonitor] = field(default_factory=list)

    eventually = staticmethod(eventually)

    @property
    def secret_file(self) -> Path:
        return self.state_dir / f"{CP_ID}.secret"

    def settings(self, **overrides: Any) -> MonitorSettings:
        """Aimed at the fakes, with short intervals so a test sees many checks."""
        settings = MonitorSettings(
            cp_id=CP_ID,
            engine=self.engine.address,
            central=self.central.address,
            state_dir=str(self.state_dir),
            registration_token=TOKEN,
            health_interval=0.2,
            health_timeout=0.3,
            retry_cap=0.5,
        )
        return replace(settings, **overrides)

    async def start(self, settings: MonitorSettings | None = None) -> RunningMonitor:
        monitor = Monitor(settings or self.settings())
        stop = asyncio.Event()
        handle = RunningMonitor(monitor, stop, asyncio.create_task(monitor.run(stop)))
        self.running.append(handle)
        return handle

    async def started_ok(self, settings: MonitorSettings | None = None) -> RunningMonitor:
        """Started, and the central has heard OK from it."""
        handle = await self.start(settings)
        await eventually(lambda: self.central.last_health() is Health.OK, what="Status OK")
        return handle


@pytest.fixture
async def rig(engine: FakeEngine, central: FakeCentral, tmp_path: Path) -> AsyncIterator[Rig]:
    """Everything an in-process monitor test needs; its monitors are stopped at teardown."""
    made = Rig(engine, central, tmp_path / "state")
    yield made
    for handle in made.running:
        if not handle.task.done():
            await handle.shutdown()


@dataclass
class MonitorProcess:
    proc: asyncio.subprocess.Process
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait(self, timeout: float = 15.0) -> int:
        return await asyncio.wait_for(self.proc.wait(), timeout)


@pytest.fixture
async def spawn_monitor(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[MonitorProcess]]]:
    """``await spawn_monitor(*flags)``: the installed ``evmonitor`` script as a process,
    started like LocalStack starts it; killed at teardown if still running."""
    started: list[MonitorProcess] = []

    async def spawn(*flags: str, env: dict[str, str] | None = None) -> MonitorProcess:
        log_path = tmp_path / f"monitor-{len(started)}.log"
        script = Path(sys.executable).parent / "evmonitor"
        clean_env = {k: v for k, v in os.environ.items() if not k.startswith("EV_")}
        with open(log_path, "wb") as log:
            proc = await asyncio.create_subprocess_exec(
                str(script), *flags,
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                env={**clean_env, "PYTHONUNBUFFERED": "1", **(env or {})},
            )  # fmt: skip
        started.append(MonitorProcess(proc, log_path))
        return started[-1]

    yield spawn
    for process in started:
        if process.proc.returncode is None:
            process.proc.kill()
            await process.proc.wait()


@pytest.fixture
def garbage() -> bytes:
    """Every kind of bad input at once: stray bytes, a bad LRC, not JSON, unknown type,
    a message of a known type with a wrong field."""
    bad_lrc = encode_frame(b'{"type":"status"}')[:-1] + b"\x00"
    return (
        b"\x00\x01garbage\xff"
        + bad_lrc
        + encode_frame(b"not json at all")
        + encode_frame(b'{"type":"no_such_type"}')
        + encode_frame(b'{"type":"health_answer","seq":"x"}')
    )
