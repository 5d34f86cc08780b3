"""Trust on every boundary (issue 14): nobody speaks, bills or reads in another's name.

Sections (one per helper that builds the defence; append yours in its own):
- The edge: CP enrollment, HTTP reads (issue 14 items 5 and 7).
"""

from __future__ import annotations

import asyncio
import http.client
import urllib.parse
from pathlib import Path

import pytest
from e2e_system import System
from evproto.auth import registration_proof
from evproto.connection import FramedConnection
from evproto.messages import CHANNELS, Authenticate, AuthResult, Challenge, Register
from evstack.waiting import wait_until

pytestmark = pytest.mark.e2e

# --- the edge: CP enrollment and HTTP reads (items 5 and 7) ----------------------------

_ACCESS_REFUSED = "evcharging_central_access_refused_total"
_READS = ("/api/cps", "/api/sessions", "/api/events")


def _central_log(system: System) -> str:
    assert system.stack.central is not None
    return system.stack.central.log_text()


async def _register_as(port: int, cp_id: str, token: str) -> tuple[bool, AuthResult]:
    """What anyone holding the CP pods' registration token can do on a raw link:
    (the challenge said the CP is registered, the answer to the registration)."""
    conn = await FramedConnection.connect(
        "127.0.0.1", port, accept=CHANNELS["monitor<-central"], timeout=5.0
    )
    try:
        challenge = await conn.request(Authenticate(cp_id=cp_id))
        assert isinstance(challenge, Challenge), challenge
        proof = registration_proof(token, challenge.nonce, cp_id)
        answer = await conn.request(Register(cp_id=cp_id, location="Mallory's van", proof=proof))
        assert isinstance(answer, AuthResult), answer
        return challenge.registered, answer
    finally:
        await conn.close()


def test_the_registration_token_cannot_take_over_a_charging_point(system: System) -> None:
    system.start(cps=1)
    secret_file = Path(system.stack.workdir) / "CP-0" / "CP-0.secret"
    secret_before = secret_file.read_text()
    alice = system.request("alice", "CP-0", max_kwh=0.03)
    system.wait_supplying("CP-0", "alice")

    for _ in range(4):  # the take-over the issue found: re-register CP-0 with the token
        registered, answer = asyncio.run(
            _register_as(system.stack.listen_port, "CP-0", system.stack.registration_token)
        )
        assert registered and not answer.accepted and not answer.sealed_secret, answer
        assert "already registered" in answer.reason and "evctl reset CP-0" in answer.reason

    # the real monitor stayed connected: CP-0 supplies on, then is ACTIVE again
    assert system.api.cp("CP-0")["state"] == "SUPPLYING"
    result = alice.wait(60)
    assert result.exit_code == 0, result
    system.wait_cp("CP-0", 10, state="ACTIVE", connected=True, location="Bay 0")
    assert secret_file.read_text() == secret_before
    monitor_log = system.cp("CP-0").monitor.log_text()
    assert monitor_log.count("central link up") == 1  # never kicked off, never re-keyed
    assert monitor_log.count("evmonitor registered") == 1
    # each refusal counted, and journaled with the peer address
    metrics = system.api.metrics()
    assert metrics.value(_ACCESS_REFUSED, door="registration", reason="known_cp") == 4
    assert "registration refused from 127.0.0.1: register CP-0: known_cp" in _central_log(system)
    system.check_conservation()


def test_an_operator_reset_re_keys_a_charging_point_through_its_own_monitor(
    system: System,
) -> None:
    """The documented way to re-key a CP (evctl reset): the monitor is dropped,
    registers again with the token and keeps the new secret; the old one is dead."""
    system.start(cps=1)
    secret_file = Path(system.stack.workdir) / "CP-0" / "CP-0.secret"
    old_secret = secret_file.read_text()
    viewer = (system.stack.workdir / "viewer-token").read_text().strip()
    refused = system.api.request("POST", "/api/cps/CP-0/reset", token=viewer)
    assert refused.status == 403, refused
    answer = system.api.request("POST", "/api/cps/CP-0/reset")
    assert answer.status == 202 and answer.body["cp_id"] == "CP-0", answer
    wait_until(lambda: secret_file.read_text() != old_secret, 20, "the monitor to re-register")
    system.wait_cp("CP-0", 20, state="ACTIVE", connected=True)
    log = _central_log(system)
    assert "credentials of CP-0 reset by the operator" in log
    assert log.count("CP-0 connected (registered from 127.0.0.1)") == 2
    # the new secret works: a supply completes
    assert system.request("alice", "CP-0", max_kwh=0.01).wait(60).exit_code == 0
    system.check_conservation()


def _get(system: System, path: str, token: str) -> tuple[int, str]:
    """One GET; for the event stream, the status and the first chunk (the snapshot)."""
    url = urllib.parse.urlsplit(system.stack.http_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read1(1 << 20) if path == "/api/events" else response.read()
        return response.status, body.decode()
    finally:
        connection.close()


def test_reads_need_a_token_and_a_viewer_sees_drivers_as_pseudonyms(system: System) -> None:
    system.start(cps=1)
    assert system.request("alice", "CP-0", max_kwh=0.01).wait(60).exit_code == 0
    viewer = (system.stack.workdir / "viewer-token").read_text().strip()
    operator = system.stack.operator_token

    for path in _READS:
        status, body = _get(system, path, "")
        assert status == 401 and "token" in body, (path, body)
    assert _get(system, "/api/cps", "not-a-token")[0] == 401

    seen: dict[str, str] = {}
    for path in _READS:
        status, body = _get(system, path, viewer)
        assert status == 200, (path, body)
        assert "alice" not in body, (path, body)  # not in a field, not in a log line
        seen[path] = body
    sessions = system.api.request("GET", "/api/sessions", token=viewer).body["sessions"]
    (alias,) = {s["driver_id"] for s in sessions}
    assert alias.startswith("driver-") and alias in seen["/api/events"]  # stable pseudonym
    assert system.api.request("GET", "/api/sessions?driver_id=alice", token=viewer).status == 403
    assert system.api.stop("CP-0", token=viewer).status == 403  # actions stay the operator's
    assert "alice" in _get(system, "/api/sessions", operator)[1]

    metrics = system.api.metrics()
    assert metrics.value(_ACCESS_REFUSED, door="http", reason="no_token") == len(_READS)
    assert metrics.value(_ACCESS_REFUSED, door="http", reason="wrong_token") == 1
    assert metrics.value(_ACCESS_REFUSED, door="http", reason="operator_only") == 2
    log = _central_log(system)
    assert "http refused from 127.0.0.1: GET /api/cps: no_token" in log
    # one line per peer and reason in 10 s (a scan must not flood the journal)
    assert "http refused from 127.0.0.1: GET /api/sessions: operator_only" in log
    assert "POST /api/cps/CP-0/stop" not in log
    system.check_conservation()
