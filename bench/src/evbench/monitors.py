"""The monitor fleet: N simulated CPs, each a framed TCP link to the central.

Each CP connects (ENQ -> ACK), authenticates with the secret it was issued, or
registers with the registration token (``evproto.auth``), then reports its
health at the heartbeat interval: the one the central names in its
``AuthResult`` (as a monitor does), else ``FleetConfig.interval``. Links are
spread evenly over the interval
(slots of a ticker, not N sleeping tasks) and over several loopback source
addresses. Against the bare server the fleet skips authentication.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from evproto.auth import client_proof, registration_proof, unseal_secret
from evproto.errors import EvError
from evproto.messages import (
    Authenticate,
    AuthResult,
    Challenge,
    ChallengeResponse,
    ErrorReply,
    Register,
)
from evproto.proofs import cp_key_from_secret
from evproto.schema import Message

from evbench.link import LinkCounters, MonitorLink

__all__ = ["AuthCounters", "FleetConfig", "MonitorFleet", "SecretStore", "cp_id_for"]

log = logging.getLogger("evbench.monitors")
_SLOTS_PER_INTERVAL = 50
_M = TypeVar("_M", bound=Message)


def cp_id_for(index: int) -> str:
    return f"CP-{index:05d}"


class SecretStore:
    """Secrets issued by the central, kept in one JSON file between load steps: CPs'
    (at registration) and drivers' (at enrollment); the central keeps the two id
    spaces apart, so one map holds both."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.secrets: dict[str, str] = {}
        if path is not None and path.exists():
            self.secrets = json.loads(path.read_text())
        self._record_keys: dict[str, bytes] = {}
        self._dirty = False

    def get(self, owner_id: str) -> str | None:
        return self.secrets.get(owner_id)

    def put(self, owner_id: str, secret: str) -> None:
        self.secrets[owner_id] = secret
        self._record_keys.pop(owner_id, None)
        self._dirty = True

    def record_key(self, cp_id: str) -> bytes | None:
        """The CP's record key, as a monitor hands it to its engine; None before registration."""
        key = self._record_keys.get(cp_id)
        if key is None:
            secret = self.secrets.get(cp_id)
            if secret is None:
                return None
            key = self._record_keys[cp_id] = cp_key_from_secret(secret)
        return key

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.secrets))
        tmp.chmod(0o600)
        tmp.replace(self.path)
        self._dirty = False


@dataclass
class FleetConfig:
    host: str
    port: int
    cp_ids: list[str]
    sources: list[str]
    registration_token: str | None  # None: the bare server, no authentication
    secrets: SecretStore = field(default_factory=lambda: SecretStore(None))
    interval: float = 1.0
    connect_concurrency: int = 100
    timeout: float = 10.0
    connect_attempts: int = 4
    rtt_every: int = 1  # keep every n-th ACK round trip (memory at 10,000 CPs)


@dataclass(slots=True)
class AuthCounters:
    connected: int = 0
    connect_failed: int = 0
    registered: int = 0
    authenticated: int = 0
    rejected: int = 0
    gave_up: int = 0  # still not connected when the ramp's deadline passed
    errors: dict[str, int] = field(default_factory=dict)
    seconds: list[float] = field(default_factory=list)  # connect + authenticate, per CP

    def error(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1


class MonitorFleet:
    def __init__(self, config: FleetConfig) -> None:
        self.config = config
        self.counters = LinkCounters()
        self.auth = AuthCounters()
        self.links: dict[str, MonitorLink] = {}
        self.interval = config.interval  # the central's, once it has named one
        self._slots: list[list[MonitorLink]] = [[] for _ in range(_SLOTS_PER_INTERVAL)]
        self._ticker: asyncio.Task[None] | None = None

    @property
    def held(self) -> int:
        """Links open and authenticated (or, on the bare server, handshaken) right now."""
        return sum(1 for link in self.links.values() if link.authenticated and not link.closed)

    async def connect_all(self, deadline: float | None = None) -> None:
        """Connect every CP, at most ``connect_concurrency`` at a time, within ``deadline`` s.

        CPs still not connected at the deadline are given up (``auth.gave_up``).
        """
        gate = asyncio.Semaphore(self.config.connect_concurrency)
        sources = self.config.sources

        async def one(i: int, cp_id: str) -> None:
            async with gate:
                await self._connect_one(cp_id, sources[i % len(sources)])

        tasks = [asyncio.create_task(one(i, c)) for i, c in enumerate(self.config.cp_ids)]
        _done, pending = await asyncio.wait(tasks, timeout=deadline)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        self.auth.gave_up = len(pending)
        self.config.secrets.save()

    async def _connect_one(self, cp_id: str, source: str) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        for attempt in range(cfg.connect_attempts):
            started = loop.time()
            link = MonitorLink(cp_id, self.counters, rtt_every=cfg.rtt_every)
            try:
                await asyncio.wait_for(
                    loop.create_connection(
                        functools.partial(_same, link), cfg.host, cfg.port, local_addr=(source, 0)
                    ),
                    cfg.timeout,
                )
                await link.handshake(cfg.timeout)
                if cfg.registration_token is not None:
                    await self._authenticate(link, cfg.registration_token)
            except asyncio.CancelledError:
                link.close()
                raise
            except (OSError, TimeoutError, EvError) as exc:
                link.close()
                self.auth.error(exc.code if isinstance(exc, EvError) else type(exc).__name__)
                if isinstance(exc, _Rejected):
                    self.auth.rejected += 1
                    return
                await asyncio.sleep(0.2 * 2**attempt * (1 + random.random()))
                continue
            link.authenticated = True
            # report at once, as a monitor does, then every interval in the link's slot
            link.send_status()
            self._slots[len(self.links) % _SLOTS_PER_INTERVAL].append(link)
            self.links[cp_id] = link
            self.auth.connected += 1
            self.auth.seconds.append(loop.time() - started)
            return
        self.auth.connect_failed += 1
        log.warning("CP could not connect cp=%s", cp_id)

    async def _authenticate(self, link: MonitorLink, token: str) -> None:
        cp_id, timeout = link.cp_id, self.config.timeout
        challenge = _expect(await link.request(Authenticate(cp_id=cp_id), timeout), Challenge)
        secret = self.config.secrets.get(cp_id)
        if challenge.registered and secret is not None:
            proof = client_proof(secret, challenge.nonce, cp_id)
            answer = await link.request(ChallengeResponse(cp_id=cp_id, proof=proof), timeout)
            result = _expect(answer, AuthResult)
            if result.accepted:
                self._adopt_interval(result)
                self.auth.authenticated += 1
                return
            raise _Rejected(f"{cp_id} rejected: {result.reason}")
        register = Register(
            cp_id=cp_id,
            location=f"Bench bay {cp_id[3:]}",
            proof=registration_proof(token, challenge.nonce, cp_id),
        )
        result = _expect(await link.request(register, timeout), AuthResult)
        if not result.accepted:
            raise _Rejected(f"{cp_id} registration rejected: {result.reason}")
        self._adopt_interval(result)
        if result.sealed_secret:
            self.config.secrets.put(
                cp_id, unseal_secret(result.sealed_secret, token, challenge.nonce, cp_id)
            )
        self.auth.registered += 1

    def _adopt_interval(self, result: AuthResult) -> None:
        if result.status_interval is not None:
            self.interval = result.status_interval

    def start_heartbeats(self) -> None:
        """Start reporting; links join as they authenticate (call before :meth:`connect_all`)."""
        self._ticker = asyncio.create_task(self._tick_forever(), name="heartbeats")

    async def _tick_forever(self) -> None:
        """Each tick sends the status of one slot's links: every link once per interval."""
        loop = asyncio.get_running_loop()
        slots = self._slots
        due = loop.time()
        tick = 0
        while True:
            for link in slots[tick % _SLOTS_PER_INTERVAL]:
                link.send_status()
            tick += 1
            due += self.interval / _SLOTS_PER_INTERVAL
            delay = due - loop.time()
            if delay < -self.interval:  # fell a whole interval behind: do not burst
                due = loop.time()
                delay = 0
            await asyncio.sleep(max(0.0, delay))

    async def close(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
        for link in self.links.values():
            link.close()
        await asyncio.sleep(0)


def _same(link: MonitorLink) -> MonitorLink:
    return link


class _Rejected(EvError):
    code = "rejected"


def _expect(msg: Message, kind: type[_M]) -> _M:
    if isinstance(msg, kind):
        return msg
    if isinstance(msg, ErrorReply):
        raise _Rejected(f"central answered error {msg.code}: {msg.message}")
    raise EvError(f"expected {kind.TYPE.value}, got {msg.TYPE.value}")
