"""The supply flow end to end through the real broker: a fake monitor keeps the CP
online, fake engines and drivers talk Kafka exactly as the real ones will."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

import pytest
from evcentral.app import Central
from evproto.messages import (
    CpStateUpdate,
    DeadLetter,
    Directive,
    DirectiveAction,
    DriverUpdate,
    Outcome,
    SessionPhase,
    SupplyResponse,
    SupplyStarted,
    SupplyStop,
    Telemetry,
    Ticket,
)
from evproto.proofs import Signer, prove
from evproto.states import CpState, Health
from evproto.topics import Topic, partition_for
from evstack.kafka_probe import produce_raw
from evstack.waiting import eventually


@dataclass
class Flow:
    central: Central
    cp_id: str
    driver_id: str
    monitor: Any
    engine: Any
    driver: Any
    build: Any

    async def request(self, cp_id: str | None = None, **fields: Any) -> SupplyResponse:
        msg = self.build.request(self.driver_id, cp_id or self.cp_id, **fields)
        await self.driver.publish(Topic.SUPPLY_REQUESTS, msg.cp_id or "any", msg)
        return await self.driver.wait_for(SupplyResponse, request_id=msg.request_id)  # type: ignore[no-any-return]

    async def engine_says(self, msg: SupplyStarted | Telemetry | Ticket) -> None:
        await self.engine.publish(Topic.TELEMETRY, self.cp_id, msg)

    def started(self, session_id: str) -> SupplyStarted:
        return self.build.started(session_id, self.cp_id, self.driver_id)  # type: ignore[no-any-return]

    def telemetry(self, session_id: str, seq: int) -> Telemetry:
        return self.build.telemetry(session_id, self.cp_id, self.driver_id, seq)  # type: ignore[no-any-return]

    def ticket(self, session_id: str, outcome: Outcome, reason: str = "", seq: int = 3) -> Ticket:
        return self.build.ticket(  # type: ignore[no-any-return]
            session_id, self.cp_id, self.driver_id, seq=seq, outcome=outcome, reason=reason
        )

    def state(self) -> CpState | None:
        return self.central.registry.state_of(self.cp_id)


@pytest.fixture
async def flow(centrals, monitors, peers, *, new_id, wait_until, messages) -> Flow:  # type: ignore[no-untyped-def]
    central = await centrals.start(start_timeout=30.0)
    cp_id, driver_id = new_id("CP"), new_id("driver")
    monitor = await monitors.online(central, cp_id, price=0.5)
    await wait_until(lambda: central.registry.state_of(cp_id) is CpState.ACTIVE, what="ACTIVE")
    engine = await peers.engine(cp_id)
    driver = await peers.driver(driver_id)
    return Flow(central, cp_id, driver_id, monitor, engine, driver, messages())


async def test_a_supply_from_request_to_ticket(flow: Flow, peers, http, wait_until) -> None:
    states = await peers.watcher(Topic.CP_STATE, frozenset({flow.cp_id}))
    response = await flow.request(max_kwh=5.0)
    assert response.authorized and response.price == 0.5 and response.cp_id == flow.cp_id
    session_id = response.session_id
    start = await flow.engine.wait_for(Directive, action=DirectiveAction.START)
    assert (start.session_id, start.driver_id, start.price, start.max_kwh) == (
        session_id,
        flow.driver_id,
        0.5,
        5.0,
    )
    assert flow.state() is CpState.WAITING_FOR_SUPPLY

    await flow.engine_says(flow.started(session_id))
    await flow.driver.wait_for(DriverUpdate, phase=SessionPhase.SUPPLYING, seq=0)
    for seq in (1, 2, 2, 3):  # a duplicate on the way
        await flow.engine_says(flow.telemetry(session_id, seq))
    await flow.driver.wait_for(DriverUpdate, seq=3)
    assert [u.seq for u in flow.driver.of(DriverUpdate)] == [0, 1, 2, 3]
    _status, tile = await http.call(flow.central, "GET", f"/api/cps/{flow.cp_id}")
    assert tile["state"] == "SUPPLYING" and tile["driver_id"] == flow.driver_id
    assert tile["kwh"] == pytest.approx(0.03)

    ticket = flow.ticket(session_id, Outcome.COMPLETED)
    await flow.engine_says(ticket)
    assert await flow.driver.wait_for(Ticket) == ticket  # relayed unchanged
    records = flow.driver.records
    assert {r.partition for r in records} == {partition_for(flow.driver_id, 16)}
    assert {r.key for r in records} == {flow.driver_id}
    await wait_until(lambda: flow.state() is CpState.ACTIVE, what="ACTIVE after the ticket")
    _status, body = await http.call(
        flow.central, "GET", f"/api/sessions?driver_id={flow.driver_id}"
    )
    [listed] = body["sessions"]
    assert (listed["status"], listed["outcome"], listed["last_seq"]) == ("ended", "completed", 3)
    assert listed["kwh"] == pytest.approx(0.03) and listed["eur"] == pytest.approx(0.015)
    expected = [CpState.WAITING_FOR_SUPPLY, CpState.SUPPLYING, CpState.ACTIVE]
    await wait_until(
        lambda: [u.state for u in states.of(CpStateUpdate)][-3:] == expected,
        what="WAITING, SUPPLYING, ACTIVE on ev.cp.state",
    )


async def test_denials_say_why(flow: Flow, new_id) -> None:  # type: ignore[no-untyped-def]
    unknown = await flow.request(new_id("CP"))
    assert not unknown.authorized and "not a known charging point" in unknown.reason
    first = await flow.request()
    assert first.authorized
    again = await flow.request()
    assert not again.authorized
    assert again.reason == f"driver {flow.driver_id} already has a session at {flow.cp_id}"
    stale = await flow.request(new_id("CP"))
    assert not stale.authorized


async def test_a_replayed_request_is_answered_once(flow: Flow, wait_until) -> None:
    msg = flow.build.request(flow.driver_id, flow.cp_id)
    for _ in range(2):
        await flow.driver.publish(Topic.SUPPLY_REQUESTS, flow.cp_id, msg)
    await wait_until(lambda: len(flow.driver.of(SupplyResponse)) == 2, what="two answers")
    first, second = flow.driver.of(SupplyResponse)
    assert first == second and first.authorized  # the same decision, sent again
    await flow.engine.wait_for(Directive, action=DirectiveAction.START)
    assert len(flow.central.registry.sessions) == 1


async def test_the_driver_stops_its_supply(flow: Flow, new_id) -> None:  # type: ignore[no-untyped-def]
    session_id = (await flow.request()).session_id
    await flow.engine_says(flow.telemetry(session_id, 1))
    stop = SupplyStop(request_id=new_id("stop"), requester_id=flow.driver_id, sent_at=time.time())
    await flow.driver.publish(Topic.SUPPLY_REQUESTS, flow.cp_id, stop)
    end = await flow.engine.wait_for(Directive, action=DirectiveAction.END_SUPPLY)
    assert end.session_id == session_id


async def test_operator_stop_sends_stop_and_the_engine_aborts(flow: Flow, http, wait_until):
    session_id = (await flow.request()).session_id
    await flow.engine_says(flow.telemetry(session_id, 1))
    await flow.driver.wait_for(DriverUpdate, seq=1)
    status, body = await http.call(flow.central, "POST", f"/api/cps/{flow.cp_id}/stop")
    assert status == 202 and body["state"] == "STOPPED" and body["label"] == "Out of Order"
    stop = await flow.engine.wait_for(Directive, action=DirectiveAction.STOP)
    assert stop.reason == "stopped by the operator"
    ticket = flow.ticket(session_id, Outcome.ABORTED, "stopped by the operator", seq=1)
    await flow.engine_says(ticket)
    assert (await flow.driver.wait_for(Ticket)).outcome is Outcome.ABORTED
    await wait_until(lambda: not flow.central.registry.sessions, what="the session to end")
    assert flow.state() is CpState.STOPPED
    status, _body = await http.call(flow.central, "POST", f"/api/cps/{flow.cp_id}/resume")
    assert status == 202
    await flow.engine.wait_for(Directive, action=DirectiveAction.RESUME)
    assert flow.state() is CpState.ACTIVE


async def test_a_fault_during_a_supply_ends_it_with_a_partial_ticket(flow: Flow, wait_until):
    session_id = (await flow.request()).session_id
    for seq in (1, 2):
        await flow.engine_says(flow.telemetry(session_id, seq))
    await flow.driver.wait_for(DriverUpdate, seq=2)
    flow.monitor.health = Health.KO  # type: ignore[attr-defined]
    await flow.monitor.status(Health.KO, "engine says KO")  # type: ignore[attr-defined]
    error = await flow.driver.wait_for(DriverUpdate, phase=SessionPhase.ERROR)
    assert error.reason == "charging point fault"
    ticket = await flow.driver.wait_for(Ticket)  # the engine sent none: the central's own
    assert (ticket.outcome, ticket.last_seq) == (Outcome.ABORTED, 2)
    assert ticket.kwh == pytest.approx(0.02) and ticket.reason == "charging point fault"
    await flow.engine.wait_for(Directive, action=DirectiveAction.END_SUPPLY)
    assert flow.state() is CpState.BROKEN_DOWN


async def test_an_unplugged_authorization_times_out(
    centrals, monitors, peers, *, new_id, wait_until, messages
):
    central = await centrals.start(start_timeout=1.0)
    cp_id, driver_id = new_id("CP"), new_id("driver")
    await monitors.online(central, cp_id)
    await wait_until(lambda: central.registry.state_of(cp_id) is CpState.ACTIVE, what="ACTIVE")
    engine, driver = await peers.engine(cp_id), await peers.driver(driver_id)
    await driver.publish(Topic.SUPPLY_REQUESTS, cp_id, messages().request(driver_id, cp_id))
    ticket = await driver.wait_for(Ticket)
    assert ticket.outcome is Outcome.CANCELLED
    await engine.wait_for(Directive, action=DirectiveAction.END_SUPPLY)
    assert central.registry.state_of(cp_id) is CpState.ACTIVE


async def test_a_poison_record_goes_to_the_dead_letter_topic(
    central: Central, peers, kafka_settings, new_id
) -> None:
    key = new_id("poison")
    letters = await peers.watcher(Topic.DEAD_LETTER)
    produce_raw(
        kafka_settings, Topic.SUPPLY_REQUESTS, key, [b'{"type": "supply_request", "request_id": 7}']
    )
    letter = await letters.wait_for(DeadLetter, key=key)
    assert letter.topic == Topic.SUPPLY_REQUESTS.value and "request_id" in letter.reason
    value = central.metrics.registry.get_sample_value(
        "evcharging_central_kafka_dead_letters_total", {"topic": Topic.SUPPLY_REQUESTS.value}
    )
    assert value == 1


async def test_a_lost_monitor_link_does_not_stop_a_supply_the_engine_goes_on_with(
    flow: Flow, wait_until
) -> None:
    session_id = (await flow.request()).session_id
    await flow.engine_says(flow.telemetry(session_id, 1))
    await flow.monitor.close()  # the monitor is gone; the engine still talks Kafka
    await wait_until(lambda: flow.state() is CpState.DISCONNECTED, what="DISCONNECTED")
    for seq in range(2, 8):
        await flow.engine_says(flow.telemetry(session_id, seq))
        await flow.driver.wait_for(DriverUpdate, seq=seq)  # about the engine's cadence
    await flow.engine_says(flow.ticket(session_id, Outcome.COMPLETED, seq=7))
    ticket = await flow.driver.wait_for(Ticket)
    assert ticket.outcome is Outcome.COMPLETED and ticket.last_seq == 7
    assert not flow.driver.of(DriverUpdate, phase=SessionPhase.ERROR)


async def test_a_lost_monitor_link_and_a_silent_engine_abort_the_supply(flow: Flow) -> None:
    session_id = (await flow.request()).session_id
    for seq in (1, 2):
        await flow.engine_says(flow.telemetry(session_id, seq))
    await flow.driver.wait_for(DriverUpdate, seq=2)
    await flow.monitor.close()
    error = await flow.driver.wait_for(DriverUpdate, phase=SessionPhase.ERROR)
    assert "stopped reporting" in error.reason
    ticket = await flow.driver.wait_for(Ticket)
    assert (ticket.outcome, ticket.last_seq) == (Outcome.ABORTED, 2)


async def _supplying(flow: Flow, wait_until: Any) -> str:
    session_id = (await flow.request()).session_id
    assert session_id is not None
    await flow.engine_says(flow.telemetry(session_id, 1))
    await wait_until(lambda: flow.state() is CpState.SUPPLYING, what="SUPPLYING")
    return session_id


async def test_a_ticket_with_a_lone_surrogate_is_dead_lettered_at_once_and_changes_nothing(
    flow: Flow, peers, wait_until
) -> None:
    letters = await peers.watcher(Topic.DEAD_LETTER)
    session_id = await _supplying(flow, wait_until)

    sent = time.monotonic()
    await flow.engine_says(flow.ticket(session_id, Outcome.COMPLETED, reason="bad \ud800", seq=1))
    letter = await letters.wait_for(DeadLetter, key=flow.cp_id)
    assert time.monotonic() - sent < 2.0  # no retries in between
    assert "reason" in letter.reason and "\\ud800" in letter.reason
    assert flow.state() is CpState.SUPPLYING
    assert flow.central.db.get_session(session_id).status.value == "supplying"  # type: ignore[union-attr]

    await flow.engine_says(flow.ticket(session_id, Outcome.COMPLETED, seq=1))
    ticket = await flow.driver.wait_for(Ticket)
    assert ticket.reason == "" and len(flow.driver.of(Ticket)) == 1
    await wait_until(lambda: flow.state() is CpState.ACTIVE, what="ACTIVE again")


async def test_a_locked_database_holds_the_ticket_until_it_is_free_and_loses_nothing(
    flow: Flow, peers, wait_until
) -> None:
    letters = await peers.watcher(Topic.DEAD_LETTER)
    session_id = await _supplying(flow, wait_until)
    other = sqlite3.connect(flow.central.db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: "database is locked"
    try:
        await flow.engine_says(flow.ticket(session_id, Outcome.COMPLETED, seq=1))
        await wait_until(
            lambda: flow.central.kafka.consumed.consumed.get(Topic.TELEMETRY.value, 0) >= 2,
            what="the ticket read",
        )
        await asyncio.sleep(1.0)  # while retrying: nothing changed, nothing dead-lettered
        assert flow.state() is CpState.SUPPLYING and not flow.driver.of(Ticket)
        assert not letters.of(DeadLetter)
    finally:
        other.execute("ROLLBACK")
        other.close()
    ticket = await flow.driver.wait_for(Ticket)
    assert ticket.session_id == session_id and len(flow.driver.of(Ticket)) == 1
    assert flow.central.db.get_session(session_id).status.value == "ended"  # type: ignore[union-attr]


async def test_records_not_proven_by_the_cp_or_the_driver_change_nothing(
    flow: Flow, peers, wait_until
) -> None:
    response = await flow.request()
    session_id = response.session_id
    await flow.engine_says(flow.started(session_id))
    await flow.engine_says(flow.telemetry(session_id, 1))
    await flow.driver.wait_for(DriverUpdate, seq=1)
    letters = await peers.watcher(Topic.DEAD_LETTER)
    forged_ticket = dataclasses.replace(
        flow.ticket(session_id, Outcome.COMPLETED, seq=1), kwh=50.0, eur=0.0, proof="x" * 43
    )
    await flow.engine.publish(Topic.TELEMETRY, flow.cp_id, forged_ticket)
    other_key = bytes(32)  # someone's key, not the driver's
    forged_stop = prove(
        SupplyStop(
            request_id="forged-stop",
            requester_id=flow.driver_id,
            session_id=session_id,
            sent_at=time.time(),
        ),
        other_key,
        Signer.DRIVER,
    )
    await flow.driver.publish(Topic.SUPPLY_REQUESTS, flow.cp_id, forged_stop)

    metrics = flow.central.metrics.registry
    refused = "evcharging_central_refused_records_total"
    await wait_until(
        lambda: (
            metrics.get_sample_value(refused, {"type": "ticket", "code": "unproven"}) == 1
            and metrics.get_sample_value(refused, {"type": "supply_stop", "code": "unproven"}) == 1
        ),
        what="both refused",
    )
    reasons = {letter.reason for letter in await _letters(letters, 2)}
    assert any("proof does not match" in r for r in reasons), reasons
    session = flow.central.registry.sessions[session_id]  # still supplying, unchanged
    assert session.status.value == "supplying" and session.kwh == pytest.approx(0.01)
    assert metrics.get_sample_value("evcharging_central_revenue_eur_total") == 0

    # a ticket the CP proves but that cannot be true is refused too: billing is bounded,
    # and the session closes with the central's ticket up to the last plausible report
    impossible = dataclasses.replace(
        flow.ticket(session_id, Outcome.COMPLETED, seq=2), kwh=500.0, eur=0.01
    )
    await flow.engine_says(impossible)
    await wait_until(
        lambda: metrics.get_sample_value(refused, {"type": "ticket", "code": "implausible"}) == 1,
        what="the implausible ticket refused",
    )
    delivered = await flow.driver.wait_for(Ticket, session_id=session_id)
    assert (delivered.outcome, delivered.kwh) == (Outcome.ABORTED, pytest.approx(0.01))
    assert delivered.eur == pytest.approx(0.01 * 0.5) and "implausible" in delivered.reason
    aborted = "evcharging_central_sessions_aborted_total"
    assert metrics.get_sample_value(aborted, {"reason": "implausible"}) == 1


async def _letters(probe: Any, count: int) -> list[DeadLetter]:
    found: list[DeadLetter] = await eventually(
        lambda: probe.of(DeadLetter) if len(probe.of(DeadLetter)) >= count else None,
        10,
        f"{count} dead letters",
    )
    return found
