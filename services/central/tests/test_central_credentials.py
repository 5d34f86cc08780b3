"""CP authentication and registration (challenge-response) against a real database:
the registration token enrolls only unknown or reset CPs, at a bounded rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from evcentral.credentials import Authenticator
from evcentral.db import Database
from evcentral.journal import Journal
from evcentral.ratelimit import PerAddressLimiter
from evcentral.refusals import Door, Refusal, Refusals
from evcentral.registry import Registry
from evproto.auth import client_proof, new_nonce, registration_proof, unseal_secret
from evproto.messages import ChallengeResponse, Register

TOKEN = "reg-token"


class Counted:
    def __init__(self) -> None:
        self.journal = Journal()
        self.counts: list[tuple[Door, Refusal]] = []
        self.refusals = Refusals(
            self.journal, lambda door, reason: self.counts.append((door, reason))
        )


def authenticator(
    db: Database, registry: Registry, counted: Counted, token: str = TOKEN, burst: int = 100
) -> Authenticator:
    return Authenticator(
        db=db,
        registry=registry,
        registration_token=token,
        default_price=0.3,
        refusals=counted.refusals,
        limiter=PerAddressLimiter(per_minute=1, burst=burst, clock=lambda: 0.0),
    )


@pytest.fixture
def counted() -> Counted:
    return Counted()


@pytest.fixture
def setup(tmp_path: Path, counted: Counted) -> tuple[Authenticator, Database, Registry]:
    db = Database(tmp_path / "c.db")
    db.migrate()
    registry = Registry()
    return authenticator(db, registry, counted), db, registry


def register(
    auth: Authenticator,
    cp_id: str = "CP-1",
    token: str = TOKEN,
    peer: str = "10.0.0.1",
    **kw: object,
) -> tuple:
    nonce = new_nonce()
    fields: dict[str, object] = {
        "cp_id": cp_id,
        "location": "Bay 1",
        "proof": registration_proof(token, nonce, cp_id),
    }
    fields.update(kw)
    result = auth.register(cp_id, nonce, Register(**fields), peer)  # type: ignore[arg-type]
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


def test_registration_is_refused_when_no_token_is_configured(
    tmp_path: Path, counted: Counted
) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    auth = authenticator(db, Registry(), counted, token="")
    result, _secret = register(auth, token="")
    assert not result.accepted and "disabled" in result.reason


def test_the_token_cannot_re_register_a_known_cp(setup: tuple, counted: Counted) -> None:
    auth, db, _registry = setup
    _result, secret = register(auth)
    result, _stolen = register(auth, location="Impostor", peer="10.6.6.6")
    assert not result.accepted and "already registered" in result.reason
    assert "evctl reset CP-1" in result.reason
    assert login(auth, secret).accepted  # type: ignore[attr-defined]  # the real CP is unharmed
    [row] = db.load_cps()
    assert row.location == "Bay 1" and auth.is_registered("CP-1")
    assert counted.counts == [(Door.REGISTRATION, Refusal.KNOWN_CP)]
    [line] = [e for e in counted.journal.recent if e.kind.value == "security"]
    assert line.cp_id == "CP-1" and "10.6.6.6" in line.message and "known_cp" in line.message


def test_after_an_operator_reset_the_token_re_keys_the_cp_and_keeps_its_price(
    setup: tuple,
) -> None:
    auth, db, registry = setup
    _result, first = register(auth)
    registry.cps["CP-1"].price = 0.5  # the operator changed it meanwhile
    db.reset_credentials("CP-1")  # what OperatorActions.reset does to the store…
    registry.cps["CP-1"].stored_key = ""  # …and to the registry
    assert not auth.is_registered("CP-1")  # the challenge asks it to register
    refused = login(auth, first)
    assert not refused.accepted and "reset" in refused.reason  # type: ignore[attr-defined]
    result, second = register(auth, location="Bay 9", price=0.1)
    assert result.accepted and result.price == 0.5
    assert second != first
    assert not login(auth, first).accepted  # type: ignore[attr-defined]
    assert login(auth, second).accepted  # type: ignore[attr-defined]
    [row] = db.load_cps()
    assert row.location == "Bay 9"
    assert not register(auth)[0].accepted  # keyed again: the token cannot take it over


def test_registrations_are_rate_limited_per_address(tmp_path: Path, counted: Counted) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    auth = authenticator(db, Registry(), counted, burst=2)
    assert register(auth, "CP-1")[0].accepted and register(auth, "CP-2")[0].accepted
    result, _secret = register(auth, "CP-3")
    assert not result.accepted and "too many registrations" in result.reason
    assert register(auth, "CP-3", peer="10.0.0.2")[0].accepted  # another address has its own
    assert counted.counts == [(Door.REGISTRATION, Refusal.RATE_LIMITED)]
    assert [row.cp_id for row in db.load_cps()] == ["CP-1", "CP-2", "CP-3"]


def test_an_answer_for_another_cp_is_refused(setup: tuple) -> None:
    auth, _db, _registry = setup
    _result, secret = register(auth)
    nonce = new_nonce()
    answer = ChallengeResponse(cp_id="CP-2", proof=client_proof(secret, nonce, "CP-2"))
    assert not auth.verify("CP-1", nonce, answer).accepted
