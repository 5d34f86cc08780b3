"""CP authentication and registration (challenge-response, evproto.auth).

The central stores only each CP's ``stored_key``; a monitor proves it holds
the secret over a fresh nonce. Registering proves the registration token
instead and gets a new secret, sealed so only a holder of the token can open
it. The token registers only CP ids the central does not know, or whose
credentials the operator has reset (``stored_key`` empty): every CP pod holds
the token, so it must not be able to take over a CP that has a secret.
Registrations are rate-limited per peer address; every refusal is counted and
journaled (:mod:`evcentral.refusals`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from evproto.auth import (
    client_key,
    new_secret,
    recover_client_key,
    seal_secret,
    stored_key,
    verify_registration_proof,
)
from evproto.messages import AuthResult, ChallengeResponse, Register
from evproto.proofs import cp_root_key

from evcentral.db import Database
from evcentral.ratelimit import PerAddressLimiter
from evcentral.records import CpRow
from evcentral.refusals import Door, Refusal, Refusals
from evcentral.registry import ChargingPoint, Registry

__all__ = ["Authenticator"]


class Authenticator:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        *,
        registration_token: str,
        default_price: float,
        refusals: Refusals,
        limiter: PerAddressLimiter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._registry = registry
        self._registration_token = registration_token
        self._default_price = default_price
        self._refusals = refusals
        self._limiter = limiter
        self._clock = clock

    def is_registered(self, cp_id: str) -> bool:
        """Known and holding a key: it must prove its secret (a reset CP registers again)."""
        cp = self._registry.get(cp_id)
        return cp is not None and bool(cp.stored_key)

    def verify(self, cp_id: str, nonce: str, answer: ChallengeResponse) -> AuthResult:
        cp = self._registry.get(cp_id)
        if answer.cp_id != cp_id:
            return _refused(cp_id, f"the answer names {answer.cp_id}, not {cp_id}")
        if cp is None:
            return _refused(cp_id, f"{cp_id} is not registered; register it with the token")
        if not cp.stored_key:
            return _refused(
                cp_id, f"the operator reset the credentials of {cp_id}; register it with the token"
            )
        key = recover_client_key(cp.stored_key, answer.proof, nonce, cp_id)
        if key is None:
            return _refused(cp_id, "wrong credentials for this charging point")
        self._keep_record_key(cp, cp_root_key(key).hex())
        return AuthResult(cp_id=cp_id, accepted=True, price=cp.price)

    def login_refused(self, cp_id: str, peer: str, why: str) -> None:
        """Count (and journal, throttled per peer) a login :meth:`verify` refused."""
        what = f"login as {cp_id}: {why}"
        self._refusals.refuse(Door.LOGIN, Refusal.BAD_CREDENTIALS, peer, what, cp_id=cp_id)

    def register(self, cp_id: str, nonce: str, request: Register, peer: str) -> AuthResult:
        """Register ``cp_id`` for a monitor at ``peer`` (its IP address)."""
        if request.cp_id != cp_id:
            why = f"the registration names {request.cp_id}, not {cp_id}"
            return self._refuse(Refusal.BAD_REGISTRATION_TOKEN, cp_id, peer, why)
        token = self._registration_token
        if not token:
            why = "registration is disabled at this central"
            return self._refuse(Refusal.REGISTRATION_DISABLED, cp_id, peer, why)
        if not self._limiter.allow(peer):
            return self._refuse(
                Refusal.RATE_LIMITED, cp_id, peer, "too many registrations from this address"
            )
        if not verify_registration_proof(token, request.proof, nonce, cp_id):
            return self._refuse(
                Refusal.BAD_REGISTRATION_TOKEN, cp_id, peer, "the registration token is wrong"
            )
        cp = self._registry.get(cp_id)
        if cp is not None and cp.stored_key:
            return self._refuse(
                Refusal.KNOWN_CP,
                cp_id,
                peer,
                f"{cp_id} is already registered; the registration token cannot re-key it. "
                f"If this is the real CP and it lost its secret, an operator resets it first "
                f"(evctl reset {cp_id})",
            )
        secret = new_secret()
        key = stored_key(secret)
        record_key = cp_root_key(client_key(secret)).hex()
        if cp is None:
            row = CpRow(
                cp_id=cp_id,
                location=request.location,
                price=self._default_price if request.price is None else request.price,
                out_of_service=False,
                stored_key=key,
                registered_at=self._clock(),
                record_key=record_key,
            )
            self._db.insert_cp(row)
            cp = ChargingPoint.from_row(row)
            self._registry.add(cp)
        else:  # reset by the operator: a new secret, the operator's price stays
            self._db.update_credentials(cp_id, request.location, key)
            cp.stored_key = key
            cp.location = request.location
            self._keep_record_key(cp, record_key)
            self._registry.refresh(cp)
        return AuthResult(
            cp_id=cp_id,
            accepted=True,
            price=cp.price,
            sealed_secret=seal_secret(secret, token, nonce, cp_id),
        )

    def _refuse(self, reason: Refusal, cp_id: str, peer: str, why: str) -> AuthResult:
        self._refusals.refuse(Door.REGISTRATION, reason, peer, f"register {cp_id}", cp_id=cp_id)
        return _refused(cp_id, why)

    def _keep_record_key(self, cp: ChargingPoint, record_key: str) -> None:
        """The key that proves the CP's Kafka records; a CP registered before record keys
        existed gets it at its next authentication."""
        if cp.record_key != record_key:
            self._db.set_record_key(cp.cp_id, record_key)
            cp.record_key = record_key


def _refused(cp_id: str, reason: str) -> AuthResult:
    return AuthResult(cp_id=cp_id, accepted=False, reason=reason)
