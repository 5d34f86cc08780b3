"""Stand-ins for the central's peers: monitors on the real framed protocol, the
Kafka messages engines and drivers send, and an HTTP client for the API.

Imported by name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from typing import Any

import aiohttp
from evcentral.app import Central
from evcentral.records import SessionRecord, SessionStatus
from evproto.auth import client_proof, registration_proof, unseal_secret
from evproto.connection import FramedConnection
from evproto.messages import (
    CHANNELS,
    Authenticate,
    AuthResult,
    Challenge,
    ChallengeResponse,
    Origin,
    Outcome,
    Register,
    Sealed,
    Status,
    SupplyRequest,
    SupplyStarted,
    SupplyStop,
    Telemetry,
    Ticket,
)
from evproto.proofs import (
    Purpose,
    Signer,
    cp_key_from_secret,
    derive_key,
    driver_root_key,
    new_driver_secret,
    open_sealed,
    prove,
)
from evproto.schema import Message
from evproto.states import Health
from evproto.topics import Topic

OPERATOR_TOKEN = "op-token"
VIEWER_TOKEN = "view-token"
REGISTRATION_TOKEN = "reg-token"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- credentials: what real monitors, engines and drivers hold ------------------------


class Credentials:
    """The keys of this test's CPs and drivers, so fake peers prove and open records
    like the real ones. Drivers are enrolled at the running centrals on first use."""

    def __init__(self) -> None:
        self.cp_secrets: dict[str, str] = {}
        self.driver_secrets: dict[str, str] = {}
        self.centrals: list[Central] = []  # the running ones (a driver is enrolled there)

    def cp_key(self, cp_id: str) -> bytes | None:
        secret = self.cp_secrets.get(cp_id)
        return None if secret is None else cp_key_from_secret(secret)

    def driver_key(self, driver_id: str) -> bytes:
        secret = self.driver_secrets.get(driver_id)
        if secret is None:
            secret = self.driver_secrets[driver_id] = new_driver_secret()
        for central in self.centrals:  # its database keeps it for later centrals
            central.keys.enroll(driver_id, secret, "test")
        return driver_root_key(secret)

    def prove(self, msg: Message) -> Message:
        """``msg`` with the proof its real sender would add (none if it has one)."""
        if getattr(msg, "proof", None) != "":
            return msg
        if isinstance(msg, SupplyRequest | SupplyStop):
            if msg.requester_id not in self.cp_secrets:
                key = derive_key(self.driver_key(msg.requester_id), Purpose.DRIVER_REQUESTS)
                return prove(msg, key, Signer.DRIVER)
            cp_id = msg.requester_id
        else:
            cp_id = getattr(msg, "cp_id", "")
        cp_key = self.cp_key(cp_id)
        return msg if cp_key is None else prove(msg, cp_key, Signer.CP)

    def open(self, msg: Sealed, topic: Topic) -> Message:
        return open_sealed(msg, self.driver_key(msg.recipient), topic)


# --- messages as drivers and engines send them --------------------------------------


class SupplyMessages:
    """Builders for the Kafka messages of a supply; energy grows ``kwh_per_seq`` a second."""

    def __init__(self, kwh_per_seq: float = 0.01, price: float = 0.5) -> None:
        self.kwh_per_seq = kwh_per_seq
        self.price = price

    def request(self, driver_id: str, cp_id: str | None, **fields: Any) -> SupplyRequest:
        values: dict[str, Any] = {
            "request_id": unique("request"),
            "requester_id": driver_id,
            "origin": Origin.DRIVER,
            "cp_id": cp_id,
            "sent_at": time.time(),
        }
        values.update(fields)
        return SupplyRequest(**values)

    def started(self, session_id: str, cp_id: str, driver_id: str) -> SupplyStarted:
        return SupplyStarted(
            session_id=session_id, cp_id=cp_id, driver_id=driver_id, sent_at=time.time()
        )

    def telemetry(self, session_id: str, cp_id: str, driver_id: str, seq: int) -> Telemetry:
        kwh = seq * self.kwh_per_seq
        return Telemetry(
            session_id=session_id,
            cp_id=cp_id,
            driver_id=driver_id,
            seq=seq,
            kwh=kwh,
            eur=kwh * self.price,
            power_kw=22.0,
            elapsed_s=float(seq),
            sent_at=time.time(),
        )

    def ticket(
        self,
        session_id: str,
        cp_id: str,
        driver_id: str,
        *,
        seq: int,
        outcome: Outcome = Outcome.COMPLETED,
        reason: str = "",
        kwh: float | None = None,
    ) -> Ticket:
        now = time.time()
        kwh = seq * self.kwh_per_seq if kwh is None else kwh
        return Ticket(
            session_id=session_id,
            cp_id=cp_id,
            driver_id=driver_id,
            last_seq=seq,
            kwh=kwh,
            eur=kwh * self.price,
            price=self.price,
            started_at=now - seq,
            ended_at=now,
            outcome=outcome,
            reason=reason,
        )


# --- fake monitors (real framed TCP clients) ----------------------------------------


class FakeMonitor:
    def __init__(self, cp_id: str, port: int, credentials: Credentials | None = None) -> None:
        self.cp_id = cp_id
        self.port = port
        self._credentials = credentials or Credentials()
        self.secret = ""
        self.health = Health.OK
        self.conn: FramedConnection | None = None
        self._beat: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self) -> FramedConnection:
        self.conn = await FramedConnection.connect(
            "127.0.0.1", self.port, accept=CHANNELS["monitor<-central"], timeout=5.0
        )
        return self.conn

    async def _challenge(self) -> Challenge:
        conn = self.conn or await self.open()
        challenge = await conn.request(Authenticate(cp_id=self.cp_id))
        assert isinstance(challenge, Challenge), challenge
        return challenge

    async def register(
        self,
        token: str = REGISTRATION_TOKEN,
        location: str = "Test bay",
        price: float | None = None,
    ) -> AuthResult:
        challenge = await self._challenge()
        assert self.conn is not None
        proof = registration_proof(token, challenge.nonce, self.cp_id)
        result = await self.conn.request(
            Register(cp_id=self.cp_id, location=location, proof=proof, price=price)
        )
        assert isinstance(result, AuthResult), result
        if result.accepted:
            self.secret = unseal_secret(result.sealed_secret, token, challenge.nonce, self.cp_id)
            self._credentials.cp_secrets[self.cp_id] = self.secret
        return result

    async def login(self, secret: str | None = None) -> AuthResult:
        challenge = await self._challenge()
        assert self.conn is not None
        proof = client_proof(secret or self.secret, challenge.nonce, self.cp_id)
        result = await self.conn.request(ChallengeResponse(cp_id=self.cp_id, proof=proof))
        assert isinstance(result, AuthResult), result
        return result

    async def status(self, health: Health = Health.OK, reason: str = "") -> None:
        self.health = health
        assert self.conn is not None
        await self.conn.send(Status(cp_id=self.cp_id, health=health, reason=reason))

    def heartbeat(self, interval: float = 0.25) -> None:
        """Report the current health every ``interval`` in the background, like a monitor."""

        async def beat() -> None:
            # a flag, not only cancel(): Python 3.11's wait_for (inside send) can
            # swallow a cancellation that lands as the ACK arrives
            while not self._closing:
                await self.status(self.health)
                await asyncio.sleep(interval)

        self._beat = asyncio.create_task(beat())

    async def recv(self, timeout: float = 5.0) -> Message:
        assert self.conn is not None
        return await self.conn.recv(timeout)

    async def close(self) -> None:
        self._closing = True
        if self._beat is not None:
            self._beat.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._beat, 5)
        if self.conn is not None:
            await self.conn.close()


class MonitorFactory:
    def __init__(self, credentials: Credentials | None = None) -> None:
        self.credentials = credentials or Credentials()
        self.made: list[FakeMonitor] = []

    def __call__(self, cp_id: str, port: int) -> FakeMonitor:
        monitor = FakeMonitor(cp_id, port, self.credentials)
        self.made.append(monitor)
        return monitor

    async def online(self, central: Central, cp_id: str, **register: Any) -> FakeMonitor:
        """A registered CP with a live, healthy monitor sending heartbeats."""
        monitor = self(cp_id, central.monitor_port)
        result = await monitor.register(**register)
        assert result.accepted, result.reason
        await monitor.status(Health.OK)
        monitor.heartbeat()
        return monitor


# --- HTTP ---------------------------------------------------------------------------


class Http:
    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(
        self,
        central: Central,
        method: str,
        path: str,
        *,
        token: str | None = OPERATOR_TOKEN,
        **kwargs: Any,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = f"http://127.0.0.1:{central.http_port}{path}"
        async with self.session.request(method, url, headers=headers, **kwargs) as response:
            if response.content_type == "application/json":
                return response.status, await response.json()
            return response.status, await response.text()


def make_ended_session(
    session_id: str, cp_id: str, driver_id: str, outcome: Outcome, at: float
) -> SessionRecord:
    """A stored, ended session of 1.5 kWh at 0.5 €/kWh, authorized at ``at``."""
    return SessionRecord(
        session_id=session_id,
        cp_id=cp_id,
        driver_id=driver_id,
        origin=Origin.DRIVER,
        status=SessionStatus.ENDED,
        authorized_at=at,
        started_at=at + 1,
        ended_at=at + 60,
        kwh=1.5,
        eur=0.75,
        price=0.5,
        last_seq=60,
        outcome=outcome,
    )
