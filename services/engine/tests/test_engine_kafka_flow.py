"""The engine on the real embedded broker, in-process: a test acting as the
central publishes directives and reads what the engine reports on its CP's
partition of the telemetry topic."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from evengine.control import ControlCommand
from evproto.kafka import KafkaSettings
from evproto.messages import (
    DeadLetter,
    Directive,
    DirectiveAction,
    Origin,
    Outcome,
    SupplyRequest,
    SupplyResponse,
    SupplyStarted,
    Telemetry,
    Ticket,
)
from evproto.schema import decode_message, encode_message
from evproto.states import CpState
from evproto.topics import Topic
from evstack.kafka_probe import produce_raw

pytestmark = pytest.mark.slow


def sessions_total(engine: Any, outcome: str) -> float:
    value = engine.metrics.registry.get_sample_value(
        "evcharging_engine_sessions_total", {"outcome": outcome}
    )
    return float(value or 0)


async def test_start_plug_telemetry_and_a_limit_ticket(
    engine_in_process: Any, central: Any, probe: Any
) -> None:
    running = await engine_in_process()
    cp = running.cp_id
    reports = await probe(Topic.TELEMETRY, cp)
    await central.start(cp, "S-limit", max_kwh=0.025)

    started = await reports.wait_for(SupplyStarted, session_id="S-limit")
    assert (started.cp_id, started.driver_id) == (cp, "D1")
    ticket = await reports.wait_for(Ticket, session_id="S-limit")
    telemetry = reports.of(Telemetry)
    assert [t.seq for t in telemetry] == list(range(1, len(telemetry) + 1))
    assert len(telemetry) >= 3  # 2.5 s at 0.01 kWh a second: two whole seconds and a part
    assert (ticket.outcome, ticket.reason) == (Outcome.COMPLETED, "limit reached: 0.025 kWh")
    assert (ticket.kwh, ticket.eur, ticket.last_seq) == (0.025, 0.0125, telemetry[-1].seq)
    assert telemetry[-1].kwh == ticket.kwh
    assert all(a.kwh <= b.kwh for a, b in itertools.pairwise(telemetry))
    assert running.engine.status().state is CpState.ACTIVE
    assert sessions_total(running.engine, "completed") == 1


async def test_driver_stop_ends_the_supply_with_a_completed_ticket(
    engine_in_process: Any, central: Any, probe: Any
) -> None:
    running = await engine_in_process()
    cp = running.cp_id
    reports = await probe(Topic.TELEMETRY, cp)
    await central.start(cp, "S-stop")
    await reports.wait_for(Telemetry, session_id="S-stop", seq=1)
    await central.directive(cp, DirectiveAction.END_SUPPLY, session_id="S-stop")
    ticket = await reports.wait_for(Ticket, session_id="S-stop")
    assert (ticket.outcome, ticket.reason) == (Outcome.COMPLETED, "stopped by the driver")
    assert ticket.kwh == reports.of(Telemetry)[-1].kwh > 0


async def test_operator_stop_resume_and_start_refused_while_stopped(
    engine_in_process: Any, central: Any, probe: Any, eventually: Any
) -> None:
    running = await engine_in_process()
    cp = running.cp_id
    reports = await probe(Topic.TELEMETRY, cp)
    await central.start(cp, "S-op")
    await reports.wait_for(SupplyStarted, session_id="S-op")
    await central.directive(cp, DirectiveAction.STOP)
    aborted = await reports.wait_for(Ticket, session_id="S-op")
    assert (aborted.outcome, aborted.reason) == (Outcome.ABORTED, "stopped by the operator")
    assert running.engine.status().state is CpState.STOPPED

    await central.start(cp, "S-refused")
    refused = await reports.wait_for(Ticket, session_id="S-refused")
    assert (refused.outcome, refused.reason) == (Outcome.CANCELLED, "charging point out of order")
    assert not reports.of(SupplyStarted)[1:]

    await central.directive(cp, DirectiveAction.RESUME)
    await eventually(lambda: running.engine.status().state is CpState.ACTIVE, what="resumed")
    await central.start(cp, "S-after")
    await reports.wait_for(SupplyStarted, session_id="S-after")


async def test_ko_during_a_supply_aborts_it(
    engine_in_process: Any, central: Any, probe: Any
) -> None:
    running = await engine_in_process()
    cp = running.cp_id
    reports = await probe(Topic.TELEMETRY, cp)
    await central.start(cp, "S-ko")
    await reports.wait_for(Telemetry, session_id="S-ko", seq=1)
    answer = await running.engine.execute(ControlCommand.KO)
    assert answer.ok
    ticket = await reports.wait_for(Ticket, session_id="S-ko")
    assert (ticket.outcome, ticket.reason) == (Outcome.ABORTED, "charging point fault")
    assert ticket.kwh == reports.of(Telemetry)[-1].kwh
    assert sessions_total(running.engine, "aborted") == 1


async def test_bad_directives_are_dead_lettered_and_the_engine_goes_on(  # noqa: PLR0917
    engine_in_process: Any,
    central: Any,
    probe: Any,
    kafka_settings: KafkaSettings,
    eventually: Any,
    central_proof: Any,
) -> None:
    running = await engine_in_process()
    cp = running.cp_id
    letters = await probe(Topic.DEAD_LETTER, cp)
    reports = await probe(Topic.TELEMETRY, cp)

    def directive(**fields: Any) -> bytes:
        values: dict[str, Any] = {
            "directive_id": f"d-{time.monotonic_ns()}",
            "cp_id": cp,
            "action": DirectiveAction.START,
            "session_id": "S-forged",
            "driver_id": "D1",
            "price": 0.3,
            "sent_at": time.time(),
        }
        values.update(fields)
        return encode_message(Directive(**values))

    def proven(**fields: Any) -> bytes:
        return encode_message(central_proof(decode_message(directive(**fields))))

    poison = [
        directive(),  # a START nobody proved (anyone with a Kafka client)
        proven(sent_at=time.time() - 3600),  # a START the central sent an hour ago: replayed
        proven(cp_id="CP-other", action=DirectiveAction.STOP),  # keyed by this CP, for another
        proven(session_id=None),  # a start with no session
        b"\x00garbage{",
    ]
    produce_raw(kafka_settings, Topic.DIRECTIVES, cp, poison)

    found = await eventually(lambda: len(letters.of(DeadLetter)) >= 5, 20, "5 dead letters")
    assert found
    reasons = [letter.reason for letter in letters.of(DeadLetter)]
    assert any("no proof" in r for r in reasons)
    assert any("stale" in r for r in reasons)
    assert any("cp_id" in r for r in reasons)
    assert any("session_id" in r for r in reasons)
    assert any("not UTF-8 JSON" in r or "JSON" in r for r in reasons)
    assert running.engine.machine.session is None  # nothing started
    unproven = running.engine.metrics.registry.get_sample_value(
        "evcharging_engine_protocol_errors_total", {"kind": "unproven"}
    )
    assert unproven == 2

    await central.start(cp, "S-after-poison")
    await reports.wait_for(SupplyStarted, session_id="S-after-poison")
    registry = running.engine.metrics.registry
    labels = {"kind": "kafka_dead_letter"}
    counted = "evcharging_engine_protocol_errors_total"
    await eventually(lambda: registry.get_sample_value(counted, labels) == 5, 5, "5 counted")


async def test_manual_supply_denied_shows_the_reason(
    engine_in_process: Any, central: Any, probe: Any
) -> None:
    running = await engine_in_process()
    cp = running.cp_id
    requests = await probe(Topic.SUPPLY_REQUESTS, cp)
    asking = asyncio.create_task(running.engine.execute(ControlCommand.SUPPLY))
    request = await requests.wait_for(SupplyRequest)
    assert (request.origin, request.requester_id, request.cp_id) == (Origin.MANUAL, cp, cp)
    denial = SupplyResponse(
        request_id=request.request_id,
        requester_id=cp,
        origin=Origin.MANUAL,
        authorized=False,
        cp_id=cp,
        reason=f"{cp} is broken",
        sent_at=request.sent_at,
    )
    await central.send(Topic.SUPPLY_RESPONSES, cp, denial)
    answer = await asyncio.wait_for(asking, 15)
    assert not answer.ok
    assert answer.message == f"manual supply denied: {cp} is broken"


async def test_manual_supply_authorized_runs_the_same_flow(
    engine_in_process: Any, central: Any, probe: Any
) -> None:
    running = await engine_in_process()
    cp = running.cp_id
    requests = await probe(Topic.SUPPLY_REQUESTS, cp)
    reports = await probe(Topic.TELEMETRY, cp)
    asking = asyncio.create_task(running.engine.execute(ControlCommand.SUPPLY))
    request = await requests.wait_for(SupplyRequest)
    await central.send(
        Topic.SUPPLY_RESPONSES,
        cp,
        SupplyResponse(
            request_id=request.request_id,
            requester_id=cp,
            origin=Origin.MANUAL,
            authorized=True,
            cp_id=cp,
            session_id="S-manual",
            price=0.5,
            sent_at=request.sent_at,
        ),
    )
    await central.start(cp, "S-manual", driver_id=f"manual@{cp}", max_kwh=0.01)
    answer = await asyncio.wait_for(asking, 15)
    assert answer.ok and "manual supply authorized" in answer.message
    ticket = await reports.wait_for(Ticket, session_id="S-manual")
    assert (ticket.driver_id, ticket.kwh, ticket.outcome) == (
        f"manual@{cp}",
        0.01,
        Outcome.COMPLETED,
    )


async def test_shutdown_during_a_supply_delivers_an_aborted_ticket(
    engine_in_process: Any, central: Any, probe: Any
) -> None:
    running = await engine_in_process()
    cp = running.cp_id
    reports = await probe(Topic.TELEMETRY, cp)
    await central.start(cp, "S-down")
    await reports.wait_for(Telemetry, session_id="S-down", seq=1)
    await running.shut_down()
    ticket = await reports.wait_for(Ticket, session_id="S-down")
    assert (ticket.outcome, ticket.reason) == (Outcome.ABORTED, "charging point shut down")
    assert ticket.kwh == reports.of(Telemetry)[-1].kwh
