"""Proving the CP's identity to the central, on a freshly opened link.

    Authenticate(cp_id) -> Challenge(nonce, registered)
      with a secret, registered:   ChallengeResponse(client_proof) -> AuthResult
      otherwise, with the token:   Register(location, price, registration_proof) -> AuthResult
                                   (the sealed secret is unsealed and stored)

A rejected secret, when a registration token is at hand, is answered by
registering again (once); the central accepts that only for a CP the operator
has reset (``evctl reset``), and otherwise refuses naming the command. Any
other rejection is an :class:`AuthError`, which is permanent: retrying the same
credentials cannot help.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from evproto import auth
from evproto.connection import FramedConnection
from evproto.errors import AuthError, ConfigError, LinkTimeout, ProtocolError
from evproto.logs import kv
from evproto.messages import (
    Authenticate,
    AuthResult,
    Challenge,
    ChallengeResponse,
    EngineInfo,
    ErrorReply,
    Register,
)
from evproto.schema import Message
from evproto.vocabulary import LinkErrorKind

from evmonitor.credentials import SecretStore
from evmonitor.metrics import MonitorMetrics

__all__ = ["Authenticator", "SecretRejected"]

log = logging.getLogger("evmonitor.auth")
M = TypeVar("M", bound=Message)


class SecretRejected(AuthError):
    """The central refused the stored secret; registering again may fix it."""


class Authenticator:
    def __init__(
        self,
        cp_id: str,
        store: SecretStore,
        registration_token: str,
        engine_info: Callable[[], Awaitable[EngineInfo]],
        metrics: MonitorMetrics,
        *,
        timeout: float,
        on_secret: Callable[[str], None] = lambda _secret: None,
    ) -> None:
        self._cp_id = cp_id
        self._store = store
        self._token = registration_token
        self._engine_info = engine_info
        self._metrics = metrics
        self._timeout = timeout
        self._on_secret = on_secret
        self._register_next = False

    def check_configured(self) -> None:
        """Fail at start, not at the central, when there is nothing to prove."""
        secret = self._store.load()
        if secret is not None:
            self._on_secret(secret)  # the engine can prove its reports before the central is up
        elif not self._token:
            raise ConfigError(
                f"no CP secret in {self._store.path} and no registration token: set "
                "--registration-token (or EV_REGISTRATION_TOKEN_FILE) to register the CP"
            )

    async def before_connecting(self) -> None:
        """Registering needs the engine's location: wait for it before opening the link."""
        if self._register_next or self._store.load() is None:
            await self._engine_info()

    async def login(self, conn: FramedConnection) -> AuthResult:
        """Authenticate (or register) on ``conn``; the accepted result, or an error."""
        await conn.send(Authenticate(cp_id=self._cp_id))
        challenge = await self._expect(conn, Challenge)
        secret = self._store.load()
        if secret is not None and challenge.registered and not self._register_next:
            return await self._prove_secret(conn, challenge, secret)
        if not self._token:
            raise AuthError(self._why_registration_needed(challenge, secret))
        return await self._register(conn, challenge)

    async def _prove_secret(
        self, conn: FramedConnection, challenge: Challenge, secret: str
    ) -> AuthResult:
        proof = auth.client_proof(secret, challenge.nonce, self._cp_id)
        await conn.send(ChallengeResponse(cp_id=self._cp_id, proof=proof))
        result = await self._expect(conn, AuthResult)
        if result.accepted:
            log.info("authenticated %s", kv(cp=self._cp_id, peer="central", price=result.price))
            return result
        if self._token:
            self._register_next = True  # once: a refused registration is final
            raise SecretRejected(
                f"the central rejected the secret of {self._cp_id} "
                f"({result.reason or 'no reason given'}); registering again with the token"
            )
        raise AuthError(
            f"the central rejected the secret of {self._cp_id} in {self._store.path}: "
            f"{result.reason or 'no reason given'}. Remove the file and start with "
            "--registration-token to register the CP again"
        )

    async def _register(self, conn: FramedConnection, challenge: Challenge) -> AuthResult:
        try:
            info = await asyncio.wait_for(self._engine_info(), self._timeout)
        except TimeoutError:
            raise LinkTimeout(
                "registering needs the engine's location; the engine is down"
            ) from None
        proof = auth.registration_proof(self._token, challenge.nonce, self._cp_id)
        await conn.send(
            Register(cp_id=self._cp_id, location=info.location, price=info.price, proof=proof)
        )
        result = await self._expect(conn, AuthResult)
        if not result.accepted:
            reason = result.reason or "no reason given"
            # a known CP is refused whatever the token: only the operator's reset helps
            hint = "" if "evctl reset" in reason else " (check --registration-token)"
            raise AuthError(f"the central refused to register {self._cp_id}: {reason}{hint}")
        if not result.sealed_secret:
            raise ProtocolError("the central accepted the registration but sent no secret")
        try:
            secret = auth.unseal_secret(
                result.sealed_secret, self._token, challenge.nonce, self._cp_id
            )
        except ValueError:
            raise ProtocolError("the central sent a sealed secret that is not hex") from None
        self._store.save(secret)
        self._on_secret(secret)
        self._register_next = False
        log.info(
            "registered %s",
            kv(cp=self._cp_id, peer="central", location=info.location, price=result.price,
               secret_file=self._store.path),
        )  # fmt: skip
        return result

    def _why_registration_needed(self, challenge: Challenge, secret: str | None) -> str:
        if secret is None:
            return (
                f"{self._cp_id} has no secret in {self._store.path} and no registration token "
                "is set to register it: set --registration-token"
            )
        return (
            f"the central does not know {self._cp_id} and no registration token is set "
            "to register it: set --registration-token"
        )

    async def _expect(self, conn: FramedConnection, kind: type[M]) -> M:
        msg = await conn.recv(self._timeout)
        if isinstance(msg, kind):
            if getattr(msg, "cp_id", self._cp_id) != self._cp_id:
                raise ProtocolError(f"the central answered for {getattr(msg, 'cp_id', '')}")
            return msg
        if isinstance(msg, ErrorReply):
            self._metrics.protocol_error(LinkErrorKind.ERROR_REPLY)
            if msg.code == AuthError.code:
                raise AuthError(f"the central refused {self._cp_id}: {msg.message}")
            raise ProtocolError(f"the central refused the login: {msg.code}: {msg.message}")
        self._metrics.protocol_error(LinkErrorKind.UNEXPECTED_MESSAGE)
        raise ProtocolError(f"expected {kind.TYPE.value} from the central, got {msg.TYPE.value}")
