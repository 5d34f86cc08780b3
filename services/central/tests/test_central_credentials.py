"""CP authentication and registration (challenge-response) against a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from evcentral.credentials import Authenticator
from evcentral.db import Database
from evcentral.registry import Registry
from evproto.auth import client_proof, new_nonce, registration_proof, unseal_secret
from evproto.messages import ChallengeResponse, Register

TOKEN = "reg-token"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Authenticator, Database, Registry]:
    db = Database(tmp_path / "c.db")
    db.migrate()
    registry = Registry()
    auth = Authenticator(db=db, registry=registry, registration_token=TOKEN, default_price=0.3)
    return auth, db, registry


def register(auth: Authenticator, cp_id: str = "CP-1", token: str = TOKEN, **kw: object) -> tuple:
    nonce = new_nonce()
    fields: dict[str, object] = {
        "cp_id": cp_id,
        "location": "Bay 1",
        "proof": registration_proof(token, nonce, cp_id),
    }
    fields.update(kw)
    result = auth.register(cp_id, nonce, Register(**fields))  # type: ignore[arg-type]
    secret = unseal_secret(result.sealed_secret, token, nonce, cp_id) if result.accepted else ""
    return result, secret


def login(auth: Authenticator, secret: str, cp_id: str = "CP-1") -> object:
    nonce = new_nonce()
    answer = ChallengeResponse(cp_id=cp_id, proof=client_proof(secret, nonce, cp_id))
    return auth.verify(cp_id, nonce, answer)


def test_registration_with_the_token_creates_the_cp_with_the_default_price(setup: tuple) -> None:
    auth, db, registry = setup
    result, secret = register(auth)
    assert result.accepted and result.price == 0.3
    assert auth.is_registered("CP-1")
    [row] = db.load_cps()
    assert row.location == "Bay 1"
    assert secret not in row.stored_key and len(row.stored_key) == 64  # only the hash is kept
    assert registry.cps["CP-1"].stored_key == row.stored_key


def test_registration_keeps_a_proposed_price(setup: tuple) -> None:
    auth, _db, _registry = setup
    result, _secret = register(auth, price=0.45)
    assert result.price == 0.45


def test_the_issued_secret_authenticates(setup: tuple) -> None:
    auth, _db, _registry = setup
    _result, secret = register(auth)
    result = login(auth, secret)
    assert result.accepted and result.price == 0.3  # type: ignore[attr-defined]


def test_a_wrong_proof_is_refused(setup: tuple) -> None:
    auth, _db, _registry = setup
    register(auth)
    result = login(auth, "00" * 32)
    assert not result.accepted  # type: ignore[attr-defined]
    assert result.reason == "wrong credentials for this charging point"  # type: ignore[attr-defined]


def test_an_unknown_cp_must_register(setup: tuple) -> None:
    auth, _db, _registry = setup
    result = login(auth, "00" * 32, cp_id="CP-404")
    assert not result.accepted  # type: ignore[attr-defined]
    assert "not registered" in result.reason  # type: ignore[attr-defined]


def test_registration_without_the_right_token_is_refused(setup: tuple) -> None:
    auth, db, _registry = setup
    result, _secret = register(auth, token="guess")
    assert not result.accepted and result.reason == "the registration token is wrong"
    assert db.load_cps() == []


def test_registration_is_refused_when_no_token_is_configured(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    auth = Authenticator(db=db, registry=Registry(), registration_token="", default_price=0.3)
    result, _secret = register(auth, token="")
    assert not result.accepted and "disabled" in result.reason


def test_re_registration_rotates_the_secret_and_keeps_the_price(setup: tuple) -> None:
    auth, db, registry = setup
    _result, first = register(auth)
    registry.cps["CP-1"].price = 0.5  # the operator changed it meanwhile
    result, second = register(auth, location="Bay 9", price=0.1)
    assert result.accepted and result.price == 0.5
    assert second != first
    assert not login(auth, first).accepted  # type: ignore[attr-defined]
    assert login(auth, second).accepted  # type: ignore[attr-defined]
    [row] = db.load_cps()
    assert row.location == "Bay 9"


def test_an_answer_for_another_cp_is_refused(setup: tuple) -> None:
    auth, _db, _registry = setup
    _result, secret = register(auth)
    nonce = new_nonce()
    answer = ChallengeResponse(cp_id="CP-2", proof=client_proof(secret, nonce, "CP-2"))
    assert not auth.verify("CP-1", nonce, answer).accepted
