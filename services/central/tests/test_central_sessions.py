"""Session rules on the real database and registry, with a recording Kafka transport:
telemetry idempotence, exactly one ticket, start timeout, the abort grace period."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest
from evcentral.core import Core
from evcentral.db import Database
from evcentral.journal import Journal
from evcentral.keyring import Keyring
from evcentral.metrics import CentralMetrics
from evcentral.outbox import Outbox
from evcentral.records import CpRow, SessionStatus
from evcentral.registry import ChargingPoint, Registry
from evcentral.sessions import Causes, SessionManager
from evcentral.supply_requests import SupplyDesk
from evproto.kafka import Record
from evproto.messages import (
    CHANNELS,
    Directive,
    DirectiveAction,
    DriverUpdate,
    Origin,
    Outcome,
    Sealed,
    SessionPhase,
    SupplyResponse,
    SupplyStop,
    Ticket,
)
from evproto.proofs import new_driver_secret, open_sealed
from evproto.schema import Message, decode_message
from evproto.states import CpState, Health
from evproto.topics import Topic
from evstack.waiting import eventually
from prometheus_client import CollectorRegistry

RECORD = Record(Topic.TELEMETRY, 0, 0, "CP-1", 0)


class RecordingPublisher:
    """The transport under the Outbox: keeps (topic, key, message) instead of sending."""

    def __init__(self) -> None:
        self.sent: list[tuple[Topic, str, Message]] = []
        self.keys: Keyring | None = None  # opens what is sealed for drivers

    def publish_encoded(self, topic: Topic, key: str, value: bytes) -> asyncio.Future[None]:
        return self.publish(topic, key, decode_message(value, CHANNELS[topic]))

    def publish(self, topic: Topic, key: str, msg: Message) -> asyncio.Future[None]:
        if isinstance(msg, Sealed):
            assert self.keys is not None
            driver_key = self.keys.driver_key(msg.recipient)
            assert driver_key is not None
            msg = open_sealed(msg, driver_key, topic)
        self.sent.append((topic, key, msg))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def of(self, kind: type[Message], **fields: Any) -> list[Any]:
        return [
            m
            for _t, _k, m in self.sent
            if isinstance(m, kind) and all(getattr(m, f) == v for f, v in fields.items())
        ]


class Link:
    cp_id = "CP-1"

    def close_soon(self, reason: str) -> None:
        pass


class World:
    def __init__(
        self, tmp_path: Path, build: Any, start_timeout: float = 60.0, grace: float = 0.2
    ) -> None:
        self.db = Database(tmp_path / "c.db")
        self.db.migrate()
        self.metrics = CentralMetrics(CollectorRegistry())
        self.registry = Registry()
        self.wire = RecordingPublisher()
        self.keys = self.wire.keys = Keyring(self.db, self.registry)
        for driver in ("D1", "D2"):
            self.keys.enroll(driver, new_driver_secret(), "test")
        self.outbox = Outbox(self.wire, self.keys, self.db)  # type: ignore[arg-type]
        core = Core(self.db, self.registry, self.outbox, Journal(), self.metrics)
        self.sessions = SessionManager(
            core, start_timeout=start_timeout, abort_grace=grace, energy_margin_kwh=100.0
        )
        self.desk = SupplyDesk(core, self.sessions)
        self.build = build(kwh_per_seq=0.1, price=0.5)
        row = CpRow("CP-1", "Bay 1", 0.5, False, "k", 0.0)
        self.db.insert_cp(row)
        self.cp = ChargingPoint.from_row(row)
        self.registry.add(self.cp)
        self.registry.attach_link(self.cp, Link(), Health.OK)

    def metric(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    async def request(
        self, request_id: str = "r1", driver: str = "D1", origin: Origin = Origin.DRIVER
    ) -> SupplyResponse:
        msg = self.build.request(driver, "CP-1", request_id=request_id, origin=origin)
        await self.desk.on_request(msg, RECORD)
        return self.wire.of(SupplyResponse, request_id=request_id)[-1]  # type: ignore[no-any-return]

    async def telemetry(self, session_id: str, seq: int, driver: str = "D1") -> None:
        await self.sessions.on_telemetry(
            self.build.telemetry(session_id, "CP-1", driver, seq), RECORD
        )

    def ticket(
        self, session_id: str, outcome: Outcome = Outcome.COMPLETED, kwh: float = 1.0
    ) -> Ticket:
        return self.build.ticket(session_id, "CP-1", "D1", seq=3, outcome=outcome, kwh=kwh)  # type: ignore[no-any-return]

    def tickets(self) -> list[Ticket]:
        return [m for _t, _k, m in self.wire.sent if isinstance(m, Ticket)]


@pytest.fixture
def world(tmp_path: Path, messages: Any) -> World:
    return World(tmp_path, messages)


async def test_authorization_opens_a_session_and_sends_start(world: World) -> None:
    response = await world.request()
    assert response.authorized and response.price == 0.5 and response.session_id
    [start] = world.wire.of(Directive, action=DirectiveAction.START)
    assert (start.session_id, start.driver_id, start.price) == (response.session_id, "D1", 0.5)
    assert world.cp.state is CpState.WAITING_FOR_SUPPLY
    [stored] = world.db.open_sessions()
    assert stored.status is SessionStatus.AUTHORIZED and stored.request_id == "r1"


async def test_a_replayed_request_gets_no_second_decision(world: World) -> None:
    first = await world.request("r1")
    again = await world.request("r1")
    assert again == first  # the stored response, sent again
    # and START again (the first may have died with a crash before the broker had it);
    # the same session, which the engine starts once
    starts = world.wire.of(Directive, action=DirectiveAction.START)
    assert [d.session_id for d in starts] == [first.session_id] * 2
    assert len(world.db.list_sessions()) == 1
    assert (
        world.metric("evcharging_central_authorizations_total", result="authorized", reason="ok")
        == 1
    )


async def test_telemetry_counts_only_new_sequence_numbers(world: World) -> None:
    session_id = (await world.request()).session_id
    for seq in (1, 2, 2, 1, 3):
        await world.telemetry(session_id, seq)
    session = world.registry.sessions[session_id]
    assert (session.last_seq, session.kwh) == (3, pytest.approx(0.3))
    assert session.status is SessionStatus.SUPPLYING  # telemetry proves the supply started
    updates = world.wire.of(DriverUpdate, phase=SessionPhase.SUPPLYING)
    assert [u.seq for u in updates] == [1, 2, 3]
    assert (
        world.metric("evcharging_central_ignored_messages_total", kind="duplicate_telemetry") == 2
    )
    world.sessions.flush()
    [stored] = world.db.open_sessions()
    assert stored.last_seq == 3


async def test_exactly_one_ticket_per_session(world: World) -> None:
    session_id = (await world.request()).session_id
    await world.sessions.on_started(world.build.started(session_id, "CP-1", "D1"), RECORD)
    first = world.ticket(session_id, kwh=1.0)
    await world.sessions.on_ticket(first, RECORD)
    another_record = dataclasses.replace(RECORD, offset=RECORD.offset + 1)
    await world.sessions.on_ticket(world.ticket(session_id, kwh=5.0), another_record)
    await world.telemetry(session_id, 9)
    assert world.tickets() == [first]
    [stored] = world.db.list_sessions()
    assert (stored.status, stored.kwh, stored.outcome) == (
        SessionStatus.ENDED,
        1.0,
        Outcome.COMPLETED,
    )
    assert world.cp.state is CpState.ACTIVE
    assert world.metric("evcharging_central_ignored_messages_total", kind="late_ticket") == 1
    assert world.metric("evcharging_central_ignored_messages_total", kind="late_telemetry") == 1
    assert world.metric("evcharging_central_sessions_completed_total") == 1
    assert world.metric("evcharging_central_energy_delivered_kwh_total") == 1.0


async def test_a_relayed_ticket_stays_in_the_outbox_until_the_broker_confirms_it(
    world: World,
) -> None:
    """Kept with the session's end: after a crash before the broker confirmed it, the
    next start sends it again; a copy of the engine's record read again is ignored."""
    session_id = (await world.request()).session_id
    await world.sessions.on_started(world.build.started(session_id, "CP-1", "D1"), RECORD)
    ticket = world.ticket(session_id, kwh=1.0)
    ending = dataclasses.replace(RECORD, offset=41)
    await world.sessions.on_ticket(ticket, ending)
    assert world.tickets() == [ticket]
    [kept] = world.db.kept_records()
    assert (kept.topic, kept.key) == (Topic.DRIVER_UPDATES.value, "D1")
    await world.sessions.on_ticket(ticket, ending)  # the replay: nothing more
    assert world.tickets() == [ticket]
    await eventually(lambda: world.db.kept_records() == [], 5, "the confirmed ticket deleted")
    assert world.metric("evcharging_central_sessions_completed_total") == 1  # billed once


async def test_start_timeout_cancels_with_a_ticket(tmp_path: Path, messages: Any) -> None:
    world = World(tmp_path, messages, start_timeout=0.1)
    session_id = (await world.request()).session_id
    ticket = await _wait_for_ticket(world)
    assert (ticket.session_id, ticket.outcome) == (session_id, Outcome.CANCELLED)
    assert world.wire.of(Directive, action=DirectiveAction.END_SUPPLY, session_id=session_id)
    assert world.cp.state is CpState.ACTIVE
    assert world.metric("evcharging_central_sessions_aborted_total", reason="start_timeout") == 1


async def test_a_fault_tells_the_driver_and_closes_with_a_partial_ticket(world: World) -> None:
    session_id = (await world.request()).session_id
    await world.telemetry(session_id, 1)
    await world.telemetry(session_id, 2)
    world.sessions.cp_fault(world.cp, Causes.FAULT)
    [error] = world.wire.of(DriverUpdate, phase=SessionPhase.ERROR)
    assert error.reason == "charging point fault"
    await world.telemetry(session_id, 3)  # still counted for the ticket, not relayed
    ticket = await _wait_for_ticket(world)
    assert ticket.outcome is Outcome.ABORTED and ticket.last_seq == 3
    assert ticket.kwh == pytest.approx(0.3) and ticket.reason == "charging point fault"
    assert len(world.wire.of(DriverUpdate, phase=SessionPhase.SUPPLYING)) == 2
    await world.sessions.on_ticket(world.ticket(session_id, Outcome.ABORTED), RECORD)
    assert len(world.tickets()) == 1
    assert world.metric("evcharging_central_sessions_aborted_total", reason="fault") == 1


async def test_the_engines_ticket_within_the_grace_period_wins(world: World) -> None:
    session_id = (await world.request()).session_id
    await world.telemetry(session_id, 1)
    world.sessions.cp_fault(world.cp, Causes.OPERATOR_STOP)
    engine_ticket = world.ticket(session_id, Outcome.ABORTED)
    await world.sessions.on_ticket(engine_ticket, RECORD)
    assert world.sessions.pending_aborts == 0  # the central will not add a ticket of its own
    assert world.tickets() == [engine_ticket]
    assert world.metric("evcharging_central_sessions_aborted_total", reason="operator_stop") == 1


async def test_a_driver_stop_before_the_plug_cancels(world: World) -> None:
    session_id = (await world.request()).session_id
    stop = SupplyStop(request_id="stop1", requester_id="D1", sent_at=time.time())
    await world.desk.on_stop(stop, RECORD)
    [ticket] = world.tickets()
    assert (ticket.session_id, ticket.outcome) == (session_id, Outcome.CANCELLED)
    assert world.wire.of(Directive, action=DirectiveAction.END_SUPPLY)


async def test_a_driver_stop_while_supplying_asks_the_engine_to_end(world: World) -> None:
    session_id = (await world.request()).session_id
    await world.telemetry(session_id, 1)
    other = SupplyStop(request_id="stop0", requester_id="D2", session_id=session_id, sent_at=1.0)
    await world.desk.on_stop(other, RECORD)  # not D2's session: ignored
    assert not world.wire.of(Directive, action=DirectiveAction.END_SUPPLY)
    stop = SupplyStop(request_id="stop1", requester_id="D1", sent_at=time.time())
    await world.desk.on_stop(stop, RECORD)
    [end] = world.wire.of(Directive, action=DirectiveAction.END_SUPPLY)
    assert end.session_id == session_id
    assert world.registry.sessions[session_id].open  # the engine's ticket closes it


async def test_manual_sessions_get_no_driver_messages(world: World) -> None:
    response = await world.request("m1", driver="CP-1", origin=Origin.MANUAL)
    assert response.authorized
    session = world.registry.sessions[response.session_id]  # type: ignore[index]
    assert session.driver_id == "manual@CP-1"
    await world.telemetry(session.session_id, 1, driver="manual@CP-1")
    assert not [m for t, _k, m in world.wire.sent if t is Topic.DRIVER_UPDATES]


async def _wait_for_ticket(world: World) -> Ticket:
    tickets = await eventually(world.tickets, 5, "a ticket")
    return tickets[0]


async def test_a_lost_link_is_a_fault_only_once_the_engine_falls_silent(
    tmp_path: Path, messages: Any
) -> None:
    world = World(tmp_path, messages, grace=0.2)
    session_id = (await world.request()).session_id
    await world.telemetry(session_id, 1)
    world.registry.detach_link(world.cp, world.cp.link)  # type: ignore[arg-type]
    world.sessions.link_lost(world.cp)
    for seq in (2, 3, 4):  # the engine goes on supplying over Kafka
        await asyncio.sleep(0.1)
        await world.telemetry(session_id, seq)
    assert not world.wire.of(DriverUpdate, phase=SessionPhase.ERROR)
    assert world.registry.sessions[session_id].open
    # then it falls silent: the driver is told, and a partial ticket closes the session
    ticket = await _wait_for_ticket(world)
    [error] = world.wire.of(DriverUpdate, phase=SessionPhase.ERROR)
    assert "stopped reporting" in error.reason
    assert (ticket.outcome, ticket.last_seq) == (Outcome.ABORTED, 4)
    assert world.metric("evcharging_central_sessions_aborted_total", reason="engine_lost") == 1
