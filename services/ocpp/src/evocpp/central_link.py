"""One connector's link to the central, as its monitor: log in, then report health.

For each CP (a station's connector or EVSE) the gateway opens the same
authenticated framed-TCP link an ``evmonitor`` would:

    Authenticate(cp_id) -> Challenge(nonce, registered)
      known CP, secret at hand:  ChallengeResponse(client_proof)          -> AuthResult
      otherwise:                 Register(location, registration_proof)   -> AuthResult(sealed)

then ``Status`` at once on every change and every ``status_interval`` the
central asks for in its ``AuthResult`` (``--status-interval`` if it names none). The
link lives while the station's WebSocket is open: closing it (EOT) is the lost
monitor link the central already knows how to handle. A refused login is
retried with back-off (the operator may fix the token or re-key the CP).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from evproto import auth
from evproto.connection import FramedConnection
from evproto.errors import AuthError, EvError, LinkError, LinkTimeout, ProtocolError
from evproto.logs import kv
from evproto.messages import (
    CHANNELS,
    Authenticate,
    AuthResult,
    Challenge,
    ChallengeResponse,
    ErrorReply,
    PriceUpdate,
    Register,
    Status,
)
from evproto.retry import peer_retry
from evproto.schema import Message
from evproto.states import Health
from evproto.vocabulary import Channel

from evocpp.settings import OcppSettings
from evocpp.store import Store

__all__ = ["CentralLink"]

log = logging.getLogger("evocpp.central")
_RETRY_CAP = 10.0
M = TypeVar("M", bound=Message)


class CentralLink:
    """The monitor role for one CP; :meth:`run` until cancelled."""

    def __init__(
        self,
        cp_id: str,
        location: str,
        settings: OcppSettings,
        store: Store,
        *,
        on_price: Callable[[float], None],
        on_connected: Callable[[bool], None],
    ) -> None:
        self.cp_id = cp_id
        self._location = location
        self._settings = settings
        self._store = store
        self._on_price = on_price
        self._on_connected = on_connected
        self._health = Health.OK
        self._reason = ""
        self._changed = asyncio.Event()
        self._ssl = settings.central_ssl_context()
        self.connected = False

    def set_health(self, health: Health, reason: str = "") -> None:
        if (health, reason) != (self._health, self._reason):
            self._health, self._reason = health, reason
            self._changed.set()

    async def run(self) -> None:
        async for attempt in peer_retry(f"central (CP {self.cp_id})", cap=_RETRY_CAP, log=log):
            with attempt:
                conn, interval = await self._open()
                try:
                    await self._report(conn, interval)
                finally:
                    self._set_connected(False)
                    await conn.close("station gone")

    def _set_connected(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self._on_connected(connected)

    async def _open(self) -> tuple[FramedConnection, float]:
        """The authenticated link and the heartbeat interval the central asked for."""
        host, port = self._settings.central_address
        timeout = min(10.0, max(1.0, 3 * self._settings.status_interval))
        conn = await FramedConnection.connect(
            host,
            port,
            accept=CHANNELS[Channel.MONITOR_FROM_CENTRAL],
            timeout=timeout,
            ssl_context=self._ssl,
        )
        try:
            result = await self._login(conn, timeout)
        except AuthError as exc:
            await conn.close("login refused")
            # not permanent here: one refused connector must not stop the gateway
            raise LinkError(f"the central refused {self.cp_id}: {exc.message}") from None
        except BaseException:
            await conn.close("login failed")
            raise
        self._set_connected(True)
        if result.price is not None:
            self._on_price(result.price)
        interval = result.status_interval or self._settings.status_interval
        log.info("cp online %s", kv(cp=self.cp_id, price=result.price, status_interval=interval))
        return conn, interval

    async def _login(self, conn: FramedConnection, timeout: float) -> AuthResult:
        await conn.send(Authenticate(cp_id=self.cp_id))
        challenge = await _answer(conn, Challenge, timeout)
        secret = self._store.secret(self.cp_id)
        if challenge.registered and secret is not None:
            proof = auth.client_proof(secret, challenge.nonce, self.cp_id)
            await conn.send(ChallengeResponse(cp_id=self.cp_id, proof=proof))
            result = await _answer(conn, AuthResult, timeout)
            if result.accepted:
                return result
            raise AuthError(result.reason or "secret rejected")
        token = self._settings.registration_token
        if not token:
            raise AuthError("unknown at the central and no --registration-token to register it")
        proof = auth.registration_proof(token, challenge.nonce, self.cp_id)
        await conn.send(Register(cp_id=self.cp_id, location=self._location, proof=proof))
        result = await _answer(conn, AuthResult, timeout)
        if not result.accepted or not result.sealed_secret:
            raise AuthError(result.reason or "registration refused")
        try:
            secret = auth.unseal_secret(result.sealed_secret, token, challenge.nonce, self.cp_id)
        except ValueError:
            raise ProtocolError("the central sent a sealed secret that is not hex") from None
        self._store.save_secret(self.cp_id, secret)
        log.info("cp registered %s", kv(cp=self.cp_id, location=self._location))
        return result

    async def _report(self, conn: FramedConnection, interval: float) -> None:
        """Status now, on every change and every interval; the central's pushes are read too."""
        reader = asyncio.create_task(self._read(conn, interval), name=f"central-read-{self.cp_id}")
        try:
            while not reader.done():
                self._changed.clear()
                await conn.send(Status(cp_id=self.cp_id, health=self._health, reason=self._reason))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), interval)
            await reader  # it ended: its error says why
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, EvError):
                await reader

    async def _read(self, conn: FramedConnection, interval: float) -> None:
        while True:
            try:
                msg = await conn.recv(interval * 10)
            except LinkTimeout:
                continue  # the central need not say anything; its ACKs prove it is there
            if isinstance(msg, PriceUpdate) and msg.cp_id == self.cp_id:
                self._on_price(msg.price)
            elif isinstance(msg, ErrorReply):
                log.warning(
                    "central refused %s", kv(cp=self.cp_id, code=msg.code, error=msg.message)
                )


async def _answer(conn: FramedConnection, kind: type[M], timeout: float) -> M:
    msg = await conn.recv(timeout)
    if isinstance(msg, kind):
        return msg
    if isinstance(msg, ErrorReply):
        raise AuthError(f"{msg.code}: {msg.message}")
    raise ProtocolError(f"expected {kind.TYPE.value} from the central, got {msg.TYPE.value}")
