"""Challenge-response credentials for charging points (SCRAM-style).

The monitor keeps the CP ``secret``; the central keeps only ``stored_key``
(the credential hash) and cannot be impersonated with it. Registration proves
the operator's registration token over the same nonce, and the new secret
travels sealed with a key only the token holder can derive.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = [
    "client_key",
    "client_proof",
    "new_nonce",
    "new_secret",
    "recover_client_key",
    "registration_proof",
    "seal_secret",
    "stored_key",
    "unseal_secret",
    "verify_client_proof",
    "verify_registration_proof",
]

_SECRET_BYTES = 32
_KEY_BYTES = hashlib.sha256().digest_size  # stored key and proof length


def _hmac(key: bytes, *parts: str) -> bytes:
    return hmac.new(key, "|".join(parts).encode(), hashlib.sha256).digest()


def _xor(a: bytes, b: bytes) -> bytes:
    return bytes(x ^ y for x, y in zip(a, b, strict=True))


def new_nonce() -> str:
    return secrets.token_hex(16)


def new_secret() -> str:
    return secrets.token_hex(_SECRET_BYTES)


def client_key(secret: str) -> bytes:
    """The CP's client key: its record key derives from it (``evproto.proofs.cp_root_key``)."""
    return _hmac(secret.encode(), "Client Key")


def stored_key(secret: str) -> str:
    """What the central stores for a CP: SHA-256 of the client key, hex."""
    return hashlib.sha256(client_key(secret)).hexdigest()


def client_proof(secret: str, nonce: str, cp_id: str) -> str:
    key = client_key(secret)
    signature = _hmac(hashlib.sha256(key).digest(), nonce, cp_id)
    return _xor(key, signature).hex()


def verify_client_proof(stored: str, proof: str, nonce: str, cp_id: str) -> bool:
    return recover_client_key(stored, proof, nonce, cp_id) is not None


def recover_client_key(stored: str, proof: str, nonce: str, cp_id: str) -> bytes | None:
    """The client key inside a valid proof (as SCRAM servers recover it), else None.

    The central derives the CP's record key from it and keeps only that."""
    try:
        stored_bytes, proof_bytes = bytes.fromhex(stored), bytes.fromhex(proof)
    except ValueError:
        return None
    if len(proof_bytes) != _KEY_BYTES or len(stored_bytes) != _KEY_BYTES:
        return None
    key = _xor(proof_bytes, _hmac(stored_bytes, nonce, cp_id))
    if not hmac.compare_digest(hashlib.sha256(key).digest(), stored_bytes):
        return None
    return key


def registration_proof(token: str, nonce: str, cp_id: str) -> str:
    return _hmac(token.encode(), "register", nonce, cp_id).hex()


def verify_registration_proof(token: str, proof: str, nonce: str, cp_id: str) -> bool:
    # Compare bytes: compare_digest raises TypeError on non-ASCII str (a hostile proof).
    expected = registration_proof(token, nonce, cp_id).encode()
    return hmac.compare_digest(expected, proof.encode("utf-8", "replace"))


def seal_secret(secret: str, token: str, nonce: str, cp_id: str) -> str:
    return _xor(bytes.fromhex(secret), _hmac(token.encode(), "seal", nonce, cp_id)).hex()


def unseal_secret(sealed: str, token: str, nonce: str, cp_id: str) -> str:
    """The secret sealed by :func:`seal_secret`; ValueError if ``sealed`` is not 64 hex digits."""
    return _xor(bytes.fromhex(sealed), _hmac(token.encode(), "seal", nonce, cp_id)).hex()
