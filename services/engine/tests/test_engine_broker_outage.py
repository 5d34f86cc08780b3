"""The broker unreachable (R1/R5): the engine keeps serving, a running supply goes
on to its end, and its telemetry and ticket arrive once the broker answers again.
Each test has a broker of its own, so freezing it disturbs no other test."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from evengine.control import ControlCommand
from evengine.engine import Engine
from evengine.settings import EngineSettings
from evproto.kafka import KafkaSettings, Publisher
from evproto.messages import (
    Directive,
    DirectiveAction,
    Outcome,
    SupplyStarted,
    Telemetry,
    Ticket,
)
from evproto.topics import Topic
from evstack.broker import EmbeddedBroker

pytestmark = pytest.mark.slow
CP = "CP-Eoutage"


@pytest.fixture
async def engine(own_broker: EmbeddedBroker, short_dir: Path) -> AsyncIterator[Engine]:
    settings = EngineSettings(
        cp_id=CP,
        kafka=own_broker.bootstrap,
        listen="127.0.0.1:0",
        control_socket=str(short_dir / "outage.sock"),
        console="off",
        plug_delay=0.0,
        power_kw=36.0,
    )
    engine = Engine(settings, console=False)
    engine.record_key(bytes(range(32)).hex())  # as the engines of conftest's central double
    stop = asyncio.Event()
    task = asyncio.create_task(engine.serve(stop))
    yield engine
    stop.set()
    await asyncio.wait_for(task, 15)


def freeze(broker: EmbeddedBroker, frozen: bool) -> None:
    """Stop (or continue) the broker process: connections stay, nothing is answered."""
    proc = broker._proc  # the broker class has no pause of its own
    assert proc is not None
    proc.send_signal(signal.SIGSTOP if frozen else signal.SIGCONT)


async def test_an_engine_started_before_the_broker_serves_then_connects(
    own_broker: EmbeddedBroker, engine: Engine
) -> None:
    answer = await asyncio.wait_for(engine.execute(ControlCommand.STATUS), 5)
    assert answer.ok and answer.status is not None
    assert answer.status["broker_up"] is False
    await asyncio.to_thread(own_broker.start)
    await asyncio.wait_for(engine.ready.wait(), 30)


async def test_a_supply_runs_to_its_end_while_the_broker_is_frozen(
    own_broker: EmbeddedBroker, engine: Engine, probe: Any, eventually: Any, central_proof: Any
) -> None:
    await asyncio.to_thread(own_broker.start)
    settings = KafkaSettings(own_broker.bootstrap, client_id="tests")
    reports = await probe(Topic.TELEMETRY, CP, settings)
    await asyncio.wait_for(engine.ready.wait(), 30)
    central = Publisher(settings)
    await central.start()
    start = Directive(
        directive_id="d-outage",
        cp_id=CP,
        action=DirectiveAction.START,
        session_id="S-outage",
        driver_id="D1",
        price=0.5,
        max_kwh=0.04,  # 4 s at 36 kW
        sent_at=time.time(),
    )
    await asyncio.wait_for(central.publish(Topic.DIRECTIVES, CP, central_proof(start)), 15)
    await reports.wait_for(SupplyStarted, session_id="S-outage")
    freeze(own_broker, True)
    try:
        await eventually(lambda: engine.machine.session is None, 15, "the supply to end")
    finally:
        freeze(own_broker, False)
    ticket = await reports.wait_for(Ticket, session_id="S-outage", timeout=60)
    telemetry = reports.of(Telemetry)
    assert (ticket.outcome, ticket.kwh) == (Outcome.COMPLETED, 0.04)
    assert [t.seq for t in telemetry] == list(range(1, ticket.last_seq + 1))
    assert telemetry[-1].kwh == ticket.kwh
    await central.close(5)
