"""A scripted central+engine on the real broker, for the driver's tests.

It reads ``ev.supply.requests`` and answers exactly as docs/interfaces.md says
the central does: a ``SupplyResponse`` keyed by the requester id, then
``DriverUpdate``s and a ``Ticket`` keyed by the driver id on
``ev.driver.updates``. What it does per CP is a :class:`Script`. Imported by
name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import time
import uuid
from typing import Any

from evproto.kafka import ConsumerLoop, KafkaSettings, Publisher, Record
from evproto.messages import (
    CpStateUpdate,
    DriverUpdate,
    EnrollResponse,
    Origin,
    Outcome,
    SessionPhase,
    SupplyRequest,
    SupplyResponse,
    SupplyStop,
    Ticket,
)
from evproto.proofs import driver_root_key, seal
from evproto.schema import Message, new_id
from evproto.states import CpState
from evproto.topics import Topic

PRICE = 0.30


def secret_of(driver_id: str) -> str:
    """The credential each test driver is enrolled with (its state dir holds it)."""
    return hashlib.sha256(f"test driver {driver_id}".encode()).hexdigest()


@dataclasses.dataclass
class Script:
    """What the scripted central+engine does with a request for one CP."""

    deny: str | None = None  # deny with this reason
    silent: bool = False  # never answer
    steps: int = 3  # telemetry updates before the ticket
    step_s: float = 0.3
    outcome: Outcome = Outcome.COMPLETED
    reason: str = ""
    fault: str | None = None  # a DriverUpdate(phase=error) before the ticket
    until_stopped: bool = False  # supply until the driver's SupplyStop
    ignore_stop: bool = False  # a central that never acts on SupplyStop
    repeat_enrollment: bool = False  # an enrollment answer arrives again before the response


@dataclasses.dataclass
class PeerSession:
    session_id: str
    driver_id: str
    cp_id: str
    stopped: asyncio.Event = dataclasses.field(default_factory=asyncio.Event)
    ticket: Ticket | None = None


class ScriptedCentral:
    def __init__(self, settings: KafkaSettings, scripts: dict[str, Script]) -> None:
        self.scripts = scripts
        self.requests: list[SupplyRequest] = []
        self.stops: list[SupplyStop] = []
        self.sessions: dict[str, PeerSession] = {}
        self._publisher = Publisher(settings)
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._consumer = ConsumerLoop(
            settings,
            group_id=f"scripted-central.{uuid.uuid4().hex[:8]}",
            partitions={Topic.SUPPLY_REQUESTS: None},
            handler=self._on_message,
            dead_letters=None,
            start="latest",
        )
        self._run: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._publisher.start()
        await self._consumer.assign()
        self._run = asyncio.create_task(self._consumer.run(self._stop))

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        if self._run is not None:
            await self._run
        await self._consumer.close()
        await self._publisher.close()

    async def publish_cp_states(self, *states: tuple[str, CpState, str, float | None]) -> None:
        for cp_id, state, location, price in states:
            msg = CpStateUpdate(
                cp_id=cp_id, state=state, location=location, price=price, sent_at=time.time()
            )
            await self._publisher.publish(Topic.CP_STATE, cp_id, msg)

    def session_of(self, driver_id: str) -> PeerSession | None:
        return next((s for s in self.sessions.values() if s.driver_id == driver_id), None)

    async def _on_message(self, msg: Message, _record: Record) -> None:
        if isinstance(msg, SupplyRequest):
            self.requests.append(msg)
            task = asyncio.create_task(self._serve(msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        elif isinstance(msg, SupplyStop):
            self.stops.append(msg)
            session = self.sessions.get(msg.session_id or "")
            if session is not None and not self.scripts[session.cp_id].ignore_stop:
                session.stopped.set()

    async def _send(self, topic: Topic, key: str, msg: Message) -> None:
        """As the central sends it: sealed for the driver (``key``) it is meant for."""
        sealed = seal(msg, driver_root_key(secret_of(key)), key, topic)
        await self._publisher.publish(topic, key, sealed)

    async def _serve(self, req: SupplyRequest) -> None:
        script = self.scripts.get(req.cp_id or "any", Script())
        if script.silent:
            return
        cp_id = req.cp_id or next(iter(self.scripts), "CP-ANY")

        def response(**fields: Any) -> SupplyResponse:
            return SupplyResponse(
                request_id=req.request_id,
                requester_id=req.requester_id,
                origin=Origin.DRIVER,
                cp_id=cp_id,
                sent_at=time.time(),
                **fields,
            )

        if script.repeat_enrollment:  # as the central re-sends a replayed request's answer
            await self._publisher.publish(
                Topic.SUPPLY_RESPONSES,
                req.requester_id,
                EnrollResponse(
                    request_id=new_id(),
                    driver_id=req.requester_id,
                    accepted=False,
                    reason="already enrolled",
                    sent_at=time.time(),
                ),
            )
        if script.deny is not None:
            await self._send(
                Topic.SUPPLY_RESPONSES,
                req.requester_id,
                response(authorized=False, reason=script.deny),
            )
            return
        session = PeerSession(new_id(), req.requester_id, cp_id)
        self.sessions[session.session_id] = session
        await self._send(
            Topic.SUPPLY_RESPONSES,
            req.requester_id,
            response(authorized=True, session_id=session.session_id, price=PRICE),
        )
        started = time.time()

        def update(phase: SessionPhase, seq: int = 0, reason: str = "") -> DriverUpdate:
            return DriverUpdate(
                driver_id=session.driver_id,
                session_id=session.session_id,
                cp_id=cp_id,
                phase=phase,
                seq=seq,
                kwh=seq * 0.01,
                eur=seq * 0.01 * PRICE,
                elapsed_s=time.time() - started,
                reason=reason,
                sent_at=time.time(),
            )

        await asyncio.sleep(0.1)
        await self._send(Topic.DRIVER_UPDATES, session.driver_id, update(SessionPhase.SUPPLYING))
        seq = 0
        outcome, reason = script.outcome, script.reason
        while seq < script.steps or script.until_stopped:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(session.stopped.wait(), script.step_s)
            if session.stopped.is_set():
                outcome, reason = Outcome.COMPLETED, "stopped by the driver"
                break
            seq += 1
            await self._send(
                Topic.DRIVER_UPDATES, session.driver_id, update(SessionPhase.SUPPLYING, seq)
            )
        if script.fault is not None:
            await self._send(
                Topic.DRIVER_UPDATES,
                session.driver_id,
                update(SessionPhase.ERROR, seq, script.fault),
            )
            await asyncio.sleep(0.2)
        ticket = Ticket(
            session_id=session.session_id,
            cp_id=cp_id,
            driver_id=session.driver_id,
            last_seq=seq,
            kwh=seq * 0.01,
            eur=seq * 0.01 * PRICE,
            price=PRICE,
            started_at=started,
            ended_at=time.time(),
            outcome=outcome,
            reason=reason,
        )
        await self._send(Topic.DRIVER_UPDATES, session.driver_id, ticket)
        session.ticket = ticket
