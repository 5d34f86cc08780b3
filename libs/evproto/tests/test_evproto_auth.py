"""Challenge-response credentials: proofs verify only with the right secret, nonce and CP."""

from __future__ import annotations

import pytest
from evproto.auth import (
    client_proof,
    new_nonce,
    new_secret,
    registration_proof,
    seal_secret,
    stored_key,
    unseal_secret,
    verify_client_proof,
    verify_registration_proof,
)

SECRET = "11" * 32
NONCE = "n-123"


def test_secrets_and_nonces_are_fresh_hex() -> None:
    assert len(new_secret()) == 64 and int(new_secret(), 16) >= 0
    assert len(new_nonce()) == 32
    assert new_secret() != new_secret()
    assert new_nonce() != new_nonce()


def test_the_client_proof_verifies_against_the_stored_key() -> None:
    proof = client_proof(SECRET, NONCE, "CP-1")
    assert verify_client_proof(stored_key(SECRET), proof, NONCE, "CP-1")


def test_the_stored_key_is_not_the_secret_and_no_proof_repeats() -> None:
    assert SECRET not in stored_key(SECRET)
    assert client_proof(SECRET, "a", "CP-1") != client_proof(SECRET, "b", "CP-1")


@pytest.mark.parametrize(
    ("secret", "nonce", "cp_id"),
    [
        pytest.param("22" * 32, NONCE, "CP-1", id="wrong-secret"),
        pytest.param(SECRET, "other-nonce", "CP-1", id="wrong-nonce"),
        pytest.param(SECRET, NONCE, "CP-2", id="wrong-cp"),
    ],
)
def test_a_proof_for_anything_else_fails(secret: str, nonce: str, cp_id: str) -> None:
    proof = client_proof(secret, nonce, cp_id)
    assert not verify_client_proof(stored_key(SECRET), proof, NONCE, "CP-1")


def test_the_stored_key_itself_is_not_a_valid_proof() -> None:
    stored = stored_key(SECRET)
    assert not verify_client_proof(stored, stored, NONCE, "CP-1")


@pytest.mark.parametrize(
    ("stored", "proof"),
    [
        pytest.param(stored_key(SECRET), "zz", id="proof-not-hex"),
        pytest.param(stored_key(SECRET), "", id="proof-empty"),
        pytest.param(stored_key(SECRET), "ab" * 16, id="proof-too-short"),
        pytest.param(stored_key(SECRET), "é" * 64, id="proof-not-ascii"),
        pytest.param("", "", id="nothing-stored"),
        pytest.param("ab" * 16, "cd" * 16, id="stored-too-short"),
        pytest.param("not hex", client_proof(SECRET, NONCE, "CP-1"), id="stored-not-hex"),
    ],
)
def test_malformed_input_fails_cleanly(stored: str, proof: str) -> None:
    assert verify_client_proof(stored, proof, NONCE, "CP-1") is False


def test_the_registration_proof_needs_the_token_nonce_and_cp() -> None:
    proof = registration_proof("token", NONCE, "CP-1")

    assert verify_registration_proof("token", proof, NONCE, "CP-1")
    assert not verify_registration_proof("other", proof, NONCE, "CP-1")
    assert not verify_registration_proof("token", proof, "n2", "CP-1")
    assert not verify_registration_proof("token", proof, NONCE, "CP-2")


@pytest.mark.parametrize("proof", ["", "zz", "é" * 64, "\udcff"])
def test_a_malformed_registration_proof_fails_cleanly(proof: str) -> None:
    assert verify_registration_proof("token", proof, NONCE, "CP-1") is False


def test_seal_and_unseal_round_trip_and_hide_the_secret() -> None:
    secret = new_secret()
    sealed = seal_secret(secret, "token", NONCE, "CP-1")

    assert sealed != secret
    assert unseal_secret(sealed, "token", NONCE, "CP-1") == secret
    assert unseal_secret(sealed, "wrong", NONCE, "CP-1") != secret


@pytest.mark.parametrize("sealed", ["zz", "00"])
def test_unsealing_malformed_input_raises_value_error(sealed: str) -> None:
    with pytest.raises(ValueError):
        unseal_secret(sealed, "token", NONCE, "CP-1")
