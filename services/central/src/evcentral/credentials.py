"""CP authentication and registration (challenge-response, evproto.auth).

The central stores only each CP's ``stored_key``; a monitor proves it holds
the secret over a fresh nonce. Registering (a new CP, or re-keying a known
one) proves the registration token instead and gets a new secret, sealed so
only a holder of the token can open it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from evproto.auth import (
    new_secret,
    seal_secret,
    stored_key,
    verify_client_proof,
    verify_registration_proof,
)
from evproto.messages import AuthResult, ChallengeResponse, Register

from evcentral.db import Database
from evcentral.records import CpRow
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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._registry = registry
        self._registration_token = registration_token
        self._default_price = default_price
        self._clock = clock

    def is_registered(self, cp_id: str) -> bool:
        return self._registry.get(cp_id) is not None

    def verify(self, cp_id: str, nonce: str, answer: ChallengeResponse) -> AuthResult:
        cp = self._registry.get(cp_id)
        if answer.cp_id != cp_id:
            return _refused(cp_id, f"the answer names {answer.cp_id}, not {cp_id}")
        if cp is None:
            return _refused(cp_id, f"{cp_id} is not registered; register it with the token")
        if not verify_client_proof(cp.stored_key, answer.proof, nonce, cp_id):
            return _refused(cp_id, "wrong credentials for this charging point")
        return AuthResult(cp_id=cp_id, accepted=True, price=cp.price)

    def register(self, cp_id: str, nonce: str, request: Register) -> AuthResult:
        if request.cp_id != cp_id:
            return _refused(cp_id, f"the registration names {request.cp_id}, not {cp_id}")
        token = self._registration_token
        if not token:
            return _refused(cp_id, "registration is disabled at this central")
        if not verify_registration_proof(token, request.proof, nonce, cp_id):
            return _refused(cp_id, "the registration token is wrong")
        secret = new_secret()
        key = stored_key(secret)
        cp = self._registry.get(cp_id)
        if cp is None:
            row = CpRow(
                cp_id=cp_id,
                location=request.location,
                price=self._default_price if request.price is None else request.price,
                out_of_service=False,
                stored_key=key,
                registered_at=self._clock(),
            )
            self._db.insert_cp(row)
            cp = ChargingPoint.from_row(row)
            self._registry.add(cp)
        else:  # re-registration: the secret rotates, the operator's price stays
            self._db.update_credentials(cp_id, request.location, key)
            cp.stored_key = key
            cp.location = request.location
            self._registry.refresh(cp)
        return AuthResult(
            cp_id=cp_id,
            accepted=True,
            price=cp.price,
            sealed_secret=seal_secret(secret, token, nonce, cp_id),
        )


def _refused(cp_id: str, reason: str) -> AuthResult:
    return AuthResult(cp_id=cp_id, accepted=False, reason=reason)
