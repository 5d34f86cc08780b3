"""Proofs on Kafka records: only the key holder proves, seals and opens; nothing else passes."""

from __future__ import annotations

import dataclasses

import pytest
from evproto.auth import client_key, client_proof, new_nonce, recover_client_key, stored_key
from evproto.errors import ProofError
from evproto.messages import (
    DriverUpdate,
    EnrollResponse,
    Origin,
    SessionPhase,
    SupplyRequest,
    Telemetry,
)
from evproto.proofs import (
    EnrollmentKeyPair,
    Signer,
    check_fresh,
    cp_root_key,
    measure_cost,
    new_driver_secret,
    open_sealed,
    prove,
    seal,
    seal_enrollment_secret,
    verify,
)
from evproto.schema import decode_message, encode_message
from evproto.topics import Topic

KEY = bytes(range(32))
OTHER = bytes(32)


def telemetry(**changes: object) -> Telemetry:
    base = Telemetry(
        session_id="s1",
        cp_id="CP-1",
        driver_id="D1",
        seq=3,
        kwh=0,  # an int where a float belongs: the canonical form must not care
        eur=0.5,
        power_kw=22.0,
        elapsed_s=3.0,
        sent_at=1000.0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_proof_survives_the_wire_and_verifies() -> None:
    proven = prove(telemetry(), KEY, Signer.CP)
    received = decode_message(encode_message(proven))
    verify(received, KEY, Signer.CP)


@pytest.mark.parametrize(
    ("key", "signer", "change"),
    [
        (OTHER, Signer.CP, {}),  # another CP's key
        (KEY, Signer.CENTRAL, {}),  # a proof made the other way
        (KEY, Signer.CP, {"kwh": 50.0}),  # a figure changed
        (KEY, Signer.CP, {"cp_id": "CP-2"}),  # another CP named
        (KEY, Signer.CP, {"proof": ""}),  # no proof at all
        (KEY, Signer.CP, {"proof": "not base64 at all!"}),
    ],
)
def test_a_proof_fails_for_anything_else(
    key: bytes, signer: Signer, change: dict[str, object]
) -> None:
    proven = dataclasses.replace(prove(telemetry(), KEY, Signer.CP), **change)  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        verify(proven, key, signer)


def test_freshness_bounds_both_ways() -> None:
    check_fresh(1000.0, 60.0, now=1059.0)
    with pytest.raises(ProofError, match="stale"):
        check_fresh(1000.0, 60.0, now=1061.0)
    with pytest.raises(ProofError, match="future"):
        check_fresh(1100.0, 60.0, now=1000.0)


def test_a_sealed_record_opens_only_for_its_key_topic_and_recipient() -> None:
    update = DriverUpdate(
        driver_id="D1", session_id="s1", cp_id="CP-1", phase=SessionPhase.SUPPLYING, sent_at=1.0
    )
    box = seal(update, KEY, "D1", Topic.DRIVER_UPDATES)
    wire = decode_message(encode_message(box))
    assert "CP-1" not in encode_message(box).decode()
    assert open_sealed(wire, KEY, Topic.DRIVER_UPDATES) == update  # type: ignore[arg-type]
    with pytest.raises(ProofError):
        open_sealed(box, OTHER, Topic.DRIVER_UPDATES)
    with pytest.raises(ProofError):
        open_sealed(box, KEY, Topic.SUPPLY_RESPONSES)
    with pytest.raises(ProofError):
        open_sealed(dataclasses.replace(box, recipient="D2"), KEY, Topic.DRIVER_UPDATES)


def test_the_central_derives_the_cp_record_key_from_an_authentication() -> None:
    secret, nonce = "22" * 32, new_nonce()
    proof = client_proof(secret, nonce, "CP-1")
    recovered = recover_client_key(stored_key(secret), proof, nonce, "CP-1")
    assert recovered is not None
    assert cp_root_key(recovered) == cp_root_key(client_key(secret))
    assert recover_client_key(stored_key(secret), proof, nonce, "CP-2") is None


def test_enrollment_opens_only_with_the_enrolling_key_pair() -> None:
    secret = new_driver_secret()
    pair, eavesdropper = EnrollmentKeyPair(), EnrollmentKeyPair()
    answer = EnrollResponse(
        request_id="r1",
        driver_id="D1",
        accepted=True,
        sent_at=1.0,
        **seal_enrollment_secret(secret, pair.public, "D1"),
    )
    assert pair.open(answer) == secret
    with pytest.raises(ProofError):
        eavesdropper.open(answer)


def test_the_cost_per_message_is_measured() -> None:
    request = SupplyRequest(
        request_id="r1", requester_id="D1", origin=Origin.DRIVER, cp_id="CP-1", sent_at=1.0
    )
    cost = measure_cost(request, rounds=50)
    assert set(cost) == {"prove_us", "verify_us", "seal_us", "open_us"}
    assert all(0 < v < 10_000 for v in cost.values())
