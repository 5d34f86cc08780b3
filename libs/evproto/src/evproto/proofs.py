"""Proofs on Kafka records: keys, HMAC proofs over canonical messages, sealed records.

The one place where records are signed, verified, sealed and opened; services
call these functions and never hash or encrypt on their own.

- A *proof* is HMAC-SHA256 over ``signer`` and the message's canonical JSON
  (sorted keys, float fields as floats, the ``proof`` field left out), carried
  in the message's ``proof`` field (43 characters, unpadded base64url).
- A *sealed* record is a message encrypted with AES-256-GCM for one recipient;
  the topic and the recipient are the associated data, so a box cannot be moved
  to another topic or another driver.
- Keys are 32 bytes. Each credential has one *root* key and every use derives
  its own key from it (:func:`derive_key`), so a key never serves two purposes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import hashlib
import hmac
import json
import os
import secrets
import time
import typing
from typing import Any, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from evproto import auth
from evproto.errors import MessageError, ProofError
from evproto.messages import EnrollResponse, Sealed
from evproto.schema import Message, MsgType, decode_message, encode_message
from evproto.topics import Topic

__all__ = [
    "DIRECTIVE_MAX_AGE",
    "KEY_BYTES",
    "EnrollmentKeyPair",
    "Purpose",
    "Signer",
    "canonical",
    "check_fresh",
    "check_from_central",
    "cp_key_from_secret",
    "cp_root_key",
    "derive_key",
    "driver_root_key",
    "key_from_hex",
    "measure_cost",
    "new_driver_secret",
    "open_sealed",
    "prove",
    "seal",
    "seal_enrollment_secret",
    "token_key",
    "verify",
]

KEY_BYTES = 32
_NONCE_BYTES = 12  # AES-GCM standard, random per record: fine below 2**32 records per key
_M = TypeVar("_M", bound=Message)


class Purpose(enum.StrEnum):
    """What a derived key is for; the label is part of the derivation."""

    CP_RECORDS = "cp records"  # CP -> central proofs, and the central's directives to that CP
    DRIVER_REQUESTS = "driver requests"  # SupplyRequest / SupplyStop proofs
    DRIVER_SEAL = "driver seal"  # records for the driver, sealed
    ENROLLMENT = "enrollment"  # self-enrollment proofs with the enrollment token


class Signer(enum.StrEnum):
    """Who made a proof: part of what is signed, so a proof never serves the other way."""

    CENTRAL = "central"
    CP = "cp"
    DRIVER = "driver"
    ENROLLING = "enrolling"


def derive_key(root: bytes, purpose: Purpose) -> bytes:
    return hmac.new(root, b"ev-key|" + purpose.value.encode(), hashlib.sha256).digest()


def key_from_hex(text: str) -> bytes:
    """A key kept as hex (database, state file, the monitor link); ValueError if it is not one."""
    key = bytes.fromhex(text)
    if len(key) != KEY_BYTES:
        raise ValueError(f"a key is {KEY_BYTES} bytes, got {len(key)}")
    return key


# --- root keys of each credential ------------------------------------------------


def cp_key_from_secret(secret: str) -> bytes:
    """A CP's record key, as its monitor (or the OCPP gateway) derives it from the secret."""
    return cp_root_key(auth.client_key(secret))


def cp_root_key(client_key: bytes) -> bytes:
    """A CP's record key, from its SCRAM client key (``evproto.auth``).

    The monitor computes it from the CP secret; the central recovers the client key
    from each authentication proof and keeps only this derived key.
    """
    return derive_key(client_key, Purpose.CP_RECORDS)


def new_driver_secret() -> str:
    return secrets.token_hex(KEY_BYTES)


def driver_root_key(secret: str) -> bytes:
    """What the central keeps for a driver: the driver's keys derive from it."""
    return hmac.new(bytes.fromhex(secret), b"ev-driver-root", hashlib.sha256).digest()


def token_key(token: str) -> bytes:
    """The key an enrollment token proves with (the token itself never travels)."""
    return derive_key(hashlib.sha256(token.encode()).digest(), Purpose.ENROLLMENT)


# --- proofs ----------------------------------------------------------------------

_FLOAT_FIELDS: dict[type[Message], frozenset[str]] = {}


def _float_fields(cls: type[Message]) -> frozenset[str]:
    """Fields typed float: an int sent there (``kwh=0``) arrives as 0.0, so the
    canonical form writes floats as floats on both sides."""
    names = _FLOAT_FIELDS.get(cls)
    if names is None:
        hints = typing.get_type_hints(cls)
        names = frozenset(
            f.name
            for f in dataclasses.fields(cls)
            if hints[f.name] is float or float in typing.get_args(hints[f.name])
        )
        _FLOAT_FIELDS[cls] = names
    return names


def canonical(msg: Message) -> bytes:
    """The bytes a proof covers: the message without its proof, in one spelling."""
    data: dict[str, Any] = msg.to_dict()
    data.pop("proof", None)
    for name in _float_fields(type(msg)):
        value = data.get(name)
        if value is not None:
            data[name] = float(value)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _mac(msg: Message, key: bytes, signer: Signer) -> bytes:
    return hmac.new(key, signer.value.encode() + b"|" + canonical(msg), hashlib.sha256).digest()


def prove(msg: _M, key: bytes, signer: Signer) -> _M:
    """The message with its ``proof`` field set."""
    proof = base64.urlsafe_b64encode(_mac(msg, key, signer)).rstrip(b"=").decode()
    return dataclasses.replace(msg, proof=proof)  # type: ignore[call-arg]


def verify(msg: Message, key: bytes, signer: Signer) -> None:
    """Raise :class:`ProofError` unless ``msg`` carries ``signer``'s proof with ``key``."""
    proof: str = getattr(msg, "proof", "")
    if not proof:
        raise ProofError(f"{msg.TYPE.value} carries no proof")
    try:
        given = base64.urlsafe_b64decode(proof + "=" * (-len(proof) % 4))
    except (binascii.Error, ValueError):
        raise ProofError(f"{msg.TYPE.value} proof is not base64url") from None
    if not hmac.compare_digest(given, _mac(msg, key, signer)):
        raise ProofError(f"{msg.TYPE.value} proof does not match")


def check_fresh(sent_at: float, max_age: float, now: float | None = None) -> None:
    """Raise :class:`ProofError` when a proven message is older than ``max_age`` or
    from the future by more than that (a replay or a wrong clock)."""
    now = time.time() if now is None else now
    if now - sent_at > max_age:
        raise ProofError(f"stale: sent {now - sent_at:.0f} s ago, at most {max_age:.0f} s allowed")
    if sent_at - now > max_age:
        raise ProofError(f"sent {sent_at - now:.0f} s in the future")


# The central cancels a supply not started within its --start-timeout (60 s by default);
# a command older than this is a replay or a lost one, and either is best ignored.
DIRECTIVE_MAX_AGE = 60.0


def check_from_central(msg: Message, key: bytes, sent_at: float, now: float | None = None) -> None:
    """What an engine (or the OCPP gateway) asks of a directive or an answer: proven by
    the central with the CP's record key, and not older than ``DIRECTIVE_MAX_AGE``."""
    verify(msg, key, Signer.CENTRAL)
    check_fresh(sent_at, DIRECTIVE_MAX_AGE, now)


# --- sealed records --------------------------------------------------------------


def _aad(topic: Topic, recipient: str) -> bytes:
    return f"evseal1|{topic.value}|{recipient}".encode()


def seal(msg: Message, key: bytes, recipient: str, topic: Topic) -> Sealed:
    """``msg`` encrypted for ``recipient`` on ``topic`` (AES-256-GCM)."""
    nonce = os.urandom(_NONCE_BYTES)
    box = AESGCM(derive_key(key, Purpose.DRIVER_SEAL)).encrypt(
        nonce, encode_message(msg), _aad(topic, recipient)
    )
    return Sealed(
        recipient=recipient,
        nonce=base64.b64encode(nonce).decode(),
        box=base64.b64encode(box).decode(),
    )


def open_sealed(
    sealed: Sealed, key: bytes, topic: Topic, accept: frozenset[MsgType] | None = None
) -> Message:
    """The message inside a box, validated; :class:`ProofError` if it is not for this key."""
    try:
        nonce = base64.b64decode(sealed.nonce, validate=True)
        box = base64.b64decode(sealed.box, validate=True)
        plain = AESGCM(derive_key(key, Purpose.DRIVER_SEAL)).decrypt(
            nonce, box, _aad(topic, sealed.recipient)
        )
    except (binascii.Error, ValueError, InvalidTag):
        raise ProofError("sealed record does not open with this key") from None
    try:
        return decode_message(plain, accept)
    except MessageError as exc:
        raise ProofError(f"sealed record holds a bad message: {exc.message}") from None


# --- self-enrollment: the new secret travels to the enrolling driver only ------------


class EnrollmentKeyPair:
    """The enrolling driver's one-time X25519 key pair: other holders of the
    enrollment token read the answer too, but cannot open the secret in it."""

    def __init__(self) -> None:
        self._private = X25519PrivateKey.generate()

    @property
    def public(self) -> str:
        raw = self._private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return base64.b64encode(raw).decode()

    def open(self, answer: EnrollResponse) -> str:
        """The driver secret in an accepted answer (:func:`seal_enrollment_secret`)."""
        key = _enrollment_box_key(self._private, answer.public_key, answer.driver_id)
        try:
            nonce = base64.b64decode(answer.secret_nonce, validate=True)
            box = base64.b64decode(answer.secret_box, validate=True)
            return AESGCM(key).decrypt(nonce, box, answer.driver_id.encode()).decode()
        except (binascii.Error, ValueError, InvalidTag):
            raise ProofError("the enrollment answer does not open with this key pair") from None


def _enrollment_box_key(private: X25519PrivateKey, peer_public: str, driver_id: str) -> bytes:
    try:
        peer = X25519PublicKey.from_public_bytes(base64.b64decode(peer_public, validate=True))
        shared = private.exchange(peer)
    except (binascii.Error, ValueError):
        raise ProofError("not an X25519 public key") from None
    return HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=b"ev-enroll|" + driver_id.encode(),
    ).derive(shared)


def seal_enrollment_secret(secret: str, driver_public: str, driver_id: str) -> dict[str, str]:
    """The fields of an accepted :class:`EnrollResponse`: the secret sealed to the
    driver's one-time key, and the central's one-time public key."""
    private = X25519PrivateKey.generate()
    key = _enrollment_box_key(private, driver_public, driver_id)
    nonce = os.urandom(_NONCE_BYTES)
    box = AESGCM(key).encrypt(nonce, secret.encode(), driver_id.encode())
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return {
        "public_key": base64.b64encode(public).decode(),
        "secret_nonce": base64.b64encode(nonce).decode(),
        "secret_box": base64.b64encode(box).decode(),
    }


# --- cost -------------------------------------------------------------------------


def measure_cost(msg: Message, rounds: int = 2000) -> dict[str, float]:
    """Microseconds per message to prove, verify, seal and open ``msg`` (for the bench)."""
    key = secrets.token_bytes(KEY_BYTES)
    results: dict[str, float] = {}

    def timed(name: str, step: Any) -> None:
        start = time.perf_counter()
        for _ in range(rounds):
            step()
        results[name] = (time.perf_counter() - start) / rounds * 1e6

    proven = prove(msg, key, Signer.CP)
    box = seal(msg, key, "D1", Topic.DRIVER_UPDATES)
    timed("prove_us", lambda: prove(msg, key, Signer.CP))
    timed("verify_us", lambda: verify(proven, key, Signer.CP))
    timed("seal_us", lambda: seal(msg, key, "D1", Topic.DRIVER_UPDATES))
    timed("open_us", lambda: open_sealed(box, key, Topic.DRIVER_UPDATES))
    return results
