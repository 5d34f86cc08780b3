"""Trust on every boundary (issue 14): nobody speaks, bills or reads in another's name.

The attacker has what any pod of the default chart, or any driver app, has: a
Kafka client on the real broker (raw records, nothing an evproto helper would
prove), raw sockets and HTTP. Every attack is tried while a legitimate supply
runs; each is refused, counted in a metric and journaled, and nothing changes:
sessions, tickets, revenue, CP states. The legitimate supply ends with exactly
one correct ticket (``check_conservation`` and its metric cross-check).

Sections (one per helper that builds the defence; append yours in its own):
- The edge: CP enrollment, HTTP reads (issue 14 items 5 and 7).
- Kafka records: proofs on what drivers, charging points and the central say
  (issue 14 items 1-4; docs/interfaces.md "Proofs on Kafka records").
- Read positions: nobody moves a driver's (item 1, last sentence).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
from e2e_system import System
from evproto.auth import registration_proof
from evproto.connection import FramedConnection
from evproto.errors import MessageError
from evproto.kafka import KafkaSettings
from evproto.messages import (
    CHANNELS,
    Authenticate,
    AuthResult,
    Challenge,
    DeadLetter,
    DirectiveAction,
    DriverUpdate,
    Origin,
    Outcome,
    Register,
    Sealed,
    SessionPhase,
    SupplyRequest,
    SupplyStop,
    Ticket,
)
from evproto.proofs import driver_root_key, open_sealed
from evproto.schema import Message, MsgType, encode_message
from evproto.topics import Topic
from evstack.kafka_probe import produce_raw, read_topics, skip_to_the_end
from evstack.waiting import wait_until

pytestmark = pytest.mark.e2e

# --- the edge: CP enrollment and HTTP reads (items 5 and 7) ----------------------------

_ACCESS_REFUSED = "evcharging_central_access_refused_total"
_READS = ("/api/cps", "/api/sessions", "/api/events")


def _central_log(system: System) -> str:
    assert system.stack.central is not None
    return system.stack.central.log_text()


def _secret_file(system: System, cp_id: str) -> Path:
    """The monitor's secret file, once written (the central shows the CP ACTIVE as it
    sends the secret, a moment before the monitor has stored it)."""
    path = Path(system.stack.workdir) / cp_id / f"{cp_id}.secret"
    wait_until(path.exists, 10, f"{path} to be written")
    return path


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
    secret_file = _secret_file(system, "CP-0")
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
    secret_file = _secret_file(system, "CP-0")
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


# --- Kafka records: proofs (items 1-4) --------------------------------------------------

PRICE = 0.30  # the central's default price: no CP proposes one
_REFUSED = "evcharging_central_refused_records_total"


class Attacker:
    """Publishes hand-made records and reads whole topics, as anyone on the broker can
    (raw records: no evproto publisher, nothing proven)."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._settings = KafkaSettings(bootstrap, client_id="mallory")

    def publish(self, topic: Topic, key: str, value: bytes) -> None:
        produce_raw(self._settings, topic, key, [value])

    def read(self, topic: Topic) -> list[Message]:
        return read_topics(self.bootstrap, (topic,)).of(topic)

    def skip_ahead(self, driver_id: str) -> list[str]:
        """Commit the end of the driver's partitions in its old group name and in every
        ``evdriver.*`` group the broker lists; the groups moved."""
        topics = (Topic.SUPPLY_RESPONSES, Topic.DRIVER_UPDATES)
        return skip_to_the_end(self._settings, topics, driver_id, (f"evdriver.{driver_id}",))


def refused(system: System, msg_type: MsgType, code: str = "unproven") -> float:
    return system.api.metrics().value(_REFUSED, type=msg_type.value, code=code)


def test_kafka_attacks_are_refused_while_a_real_supply_completes(system: System) -> None:
    system.start(cps=2)
    attacker = Attacker(system.stack.bootstrap)
    # bob is enrolled by the operator (the API shows his secret once); alice enrolls
    # herself on first use with the local stack's enrollment token
    enrolled = system.api.request("POST", "/api/drivers", {"driver_id": "bob"})
    assert enrolled.status == 201, enrolled.body
    bob_dir = system.workdir / "bob-phone"
    bob_dir.mkdir()
    (bob_dir / "bob.secret").write_text(enrolled.body["secret"] + "\n")
    (bob_dir / "bob.secret").chmod(0o600)
    assert system.api.request("POST", "/api/drivers", {"driver_id": "bob"}).status == 409

    alice = system.request("alice", "CP-0", max_kwh=0.06)  # ~10 s at 22 kW
    system.wait_supplying("CP-0", "alice")
    session_id = system.api.cp("CP-0")["session_id"]
    assert session_id
    metrics_before = system.api.metrics()

    # 1. a Ticket for alice's running session: 50 kWh for 0 €, unproven and then with a
    #    made-up proof
    forged_ticket = Ticket(
        session_id=session_id,
        cp_id="CP-0",
        driver_id="alice",
        last_seq=1,
        kwh=50.0,
        eur=0.0,
        price=PRICE,
        started_at=time.time() - 5,
        ended_at=time.time(),
        outcome=Outcome.COMPLETED,
    )
    attacker.publish(Topic.TELEMETRY, "CP-0", encode_message(forged_ticket))
    made_up = json.loads(encode_message(forged_ticket))
    made_up["proof"] = "A" * 43
    attacker.publish(Topic.TELEMETRY, "CP-0", json.dumps(made_up).encode())

    # 2. a SupplyStop in alice's name
    stop = SupplyStop(
        request_id=uuid.uuid4().hex,
        requester_id="alice",
        session_id=session_id,
        sent_at=time.time(),
    )
    attacker.publish(Topic.SUPPLY_REQUESTS, "CP-0", encode_message(stop))

    # 3. a SupplyRequest in bob's name (so that bob would be "busy")
    in_bobs_name = SupplyRequest(
        request_id=uuid.uuid4().hex,
        requester_id="bob",
        origin=Origin.DRIVER,
        cp_id="CP-1",
        sent_at=time.time(),
    )
    attacker.publish(Topic.SUPPLY_REQUESTS, "CP-1", encode_message(in_bobs_name))

    # 4. a START directive to the idle CP-1, unproven
    start = {
        "type": "directive",
        "v": 1,
        "directive_id": uuid.uuid4().hex,
        "cp_id": "CP-1",
        "action": DirectiveAction.START.value,
        "session_id": "S-forged",
        "driver_id": "mallory",
        "price": 0.0,
        "sent_at": time.time(),
    }
    attacker.publish(Topic.DIRECTIVES, "CP-1", json.dumps(start).encode())

    # each refusal is counted, journaled and dead-lettered with its reason
    wait_until(lambda: refused(system, MsgType.TICKET) >= 2, 15, "the forged tickets refused")
    wait_until(lambda: refused(system, MsgType.SUPPLY_STOP) >= 1, 15, "the forged stop refused")
    wait_until(
        lambda: refused(system, MsgType.SUPPLY_REQUEST) >= 1, 15, "the forged request refused"
    )

    def directive_dead_lettered() -> bool:
        return any(
            isinstance(letter, DeadLetter)
            and letter.topic == Topic.DIRECTIVES.value
            and "no proof" in letter.reason
            for letter in attacker.read(Topic.DEAD_LETTER)
        )

    wait_until(directive_dead_lettered, 15, "the engine to dead-letter the forged START")
    log = _central_log(system)
    assert "ticket refused (unproven)" in log
    assert "supply_stop refused (unproven)" in log
    assert "supply_request refused (unproven)" in log

    # 5. reading alice's updates: the records on her partition are sealed for her
    on_the_topic = attacker.read(Topic.DRIVER_UPDATES)
    hers = [r for r in on_the_topic if isinstance(r, Sealed) and r.recipient == "alice"]
    assert hers, "nothing for alice on ev.driver.updates"
    assert all(isinstance(r, Sealed) for r in on_the_topic)  # nothing in clear, for anyone
    bob_key = driver_root_key(enrolled.body["secret"])  # another driver's own credential
    for record in hers:
        wire = encode_message(record)
        assert b"kwh" not in wire and session_id.encode() not in wire
        with pytest.raises(MessageError):
            open_sealed(record, bob_key, Topic.DRIVER_UPDATES)

    # 6. updates and a ticket "from the central" to alice, in clear: she shows none of them
    fake_error = DriverUpdate(
        driver_id="alice",
        session_id=session_id,
        cp_id="CP-0",
        phase=SessionPhase.ERROR,
        reason="mallory says your car is on fire",
        sent_at=time.time(),
    )
    attacker.publish(Topic.DRIVER_UPDATES, "alice", encode_message(fake_error))
    attacker.publish(Topic.DRIVER_UPDATES, "alice", encode_message(forged_ticket))

    # the real supply goes on and ends with its one correct ticket
    result = alice.wait(40)
    assert "mallory" not in result.stdout and len(result.of("ticket")) == 1
    assert result.exit_code == 0, result
    ticket = result.ticket
    assert ticket["session_id"] == session_id and ticket["outcome"] == "completed"
    assert ticket["kwh"] == pytest.approx(0.06)
    assert ticket["eur"] == pytest.approx(0.06 * PRICE)
    [session] = system.api.sessions(driver_id="alice")
    assert session["kwh"] == pytest.approx(0.06) and session["eur"] == pytest.approx(0.06 * PRICE)

    # nothing the attacker did changed a session, a CP or the money
    assert system.api.sessions(driver_id="bob") == []  # no session in bob's name
    assert system.api.sessions(driver_id="mallory") == []
    assert system.api.cp("CP-1")["state"] == "ACTIVE"
    assert system.engine_status("CP-1")["session_id"] is None  # the forged START did nothing
    metrics = system.api.metrics()
    p = "evcharging_central_"
    assert metrics.value(f"{p}revenue_eur_total") == pytest.approx(
        metrics_before.value(f"{p}revenue_eur_total") + 0.06 * PRICE
    )
    assert metrics.value(f"{p}sessions_started_total", origin="driver") == 1

    # bob was never "busy": with his own credential he is served at once
    bob = system.request("bob", "CP-1", max_kwh=0.005, state_dir=bob_dir)
    bob_result = bob.wait(30)
    assert bob_result.exit_code == 0, bob_result
    assert "bob" in _central_log(system)
    # the audit counts what drivers accept: the forged records in clear are left out
    system.check_conservation()


# --- read positions: nobody moves a driver's (item 1) -----------------------------------


def test_a_raw_client_moving_group_offsets_cannot_make_a_driver_miss_its_ticket(
    system: System,
) -> None:
    system.start(cps=1)
    attacker = Attacker(system.stack.bootstrap)
    victor = system.request("victor", "CP-0", max_kwh=0.02)
    victor.wait_for_event("progress", 15)
    victor.kill()
    wait_until(
        lambda: any(s["status"] == "ended" for s in system.api.sessions(driver_id="victor")),
        15,
        "victor's session ends while his phone is off",
    )

    # the ticket waits on victor's partitions; mallory commits their ends in every
    # group a driver could use, so that one trusting its group would skip it
    moved = attacker.skip_ahead("victor")
    assert "evdriver.victor" in moved

    result = system.driver("victor", "watch").wait(30)
    assert result.exit_code == 0, result
    assert result.ticket["kwh"] == pytest.approx(0.02)
    assert result.ticket["outcome"] == "completed"
    system.check_conservation()
