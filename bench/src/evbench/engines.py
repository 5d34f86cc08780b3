"""The engine fleet: every simulated CP's engine, on one consumer and one producer.

It reads whole partitions of ``ev.directives`` (the fleet owns every CP key in
them, so nothing read is wasted) and runs a supply per START: after the plug
delay ``SupplyStarted``, then ``Telemetry`` every second (seq 1, 2, …,
cumulative kWh and €), and after the session length, or at END_SUPPLY / STOP,
exactly one ``Ticket``; all keyed by CP id on ``ev.supply.telemetry``. As a
real engine does, it obeys only directives the central proved with the CP's
record key (and fresh), and proves every report with that key: the key the
simulated monitor derived from the secret it got at registration. The
wall-clock instant each telemetry is published is kept for the driver fleet,
which measures the end-to-end latency when the central relays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from evproto.errors import ProofError
from evproto.kafka import KafkaSettings, Publisher, Record
from evproto.messages import (
    Directive,
    DirectiveAction,
    Outcome,
    SupplyStarted,
    Telemetry,
    Ticket,
)
from evproto.proofs import Signer, check_from_central, measure_cost, prove
from evproto.schema import Message
from evproto.topics import Topic

from evbench.kafkaread import FleetReader

__all__ = ["EngineCounters", "EngineFleet", "RecordKeys", "TelemetryClock", "proof_cost"]

log = logging.getLogger("evbench.engines")

RecordKeys = Callable[[str], bytes | None]  # CP id -> its record key, None until registered


def proof_cost() -> dict[str, float]:
    """Microseconds to prove, verify, seal and open one telemetry, as the fleet sends it."""
    return measure_cost(
        Telemetry(session_id="S-bench", cp_id="CP-00000", driver_id="D-00000", seq=12,
                  kwh=0.073333, eur=0.025667, power_kw=22.0, elapsed_s=12.0, sent_at=time.time())
    )  # fmt: skip


class TelemetryClock:
    """When each (session, seq) telemetry was published: wall clock, shared with the drivers."""

    def __init__(self) -> None:
        self._sent: dict[tuple[str, int], float] = {}

    def mark(self, session_id: str, seq: int) -> None:
        self._sent[(session_id, seq)] = time.time()

    def pop(self, session_id: str, seq: int) -> float | None:
        return self._sent.pop((session_id, seq), None)


@dataclass(slots=True)
class EngineCounters:
    directives: int = 0
    starts: int = 0
    duplicate_starts: int = 0  # a START for a session already running here (a replay)
    busy_starts: int = 0  # a START while another session runs on the CP: a central bug
    foreign: int = 0  # a directive for a CP that is not ours
    unproven: int = 0  # a directive not proven by the central (or stale): not obeyed
    ends: int = 0
    telemetry: int = 0
    tickets: int = 0
    publish_failures: int = 0
    tickets_by_session: dict[str, int] = field(default_factory=dict)


@dataclass
class _Supply:
    directive: Directive
    started_at: float
    end: asyncio.Event
    outcome: Outcome = Outcome.COMPLETED
    reason: str = ""
    task: asyncio.Task[None] | None = None


class EngineFleet:
    def __init__(
        self,
        settings: KafkaSettings,
        publisher: Publisher,
        cp_ids: set[str],
        clock: TelemetryClock,
        record_keys: RecordKeys,
        *,
        group_id: str,
        session_s: float,
        plug_delay: float = 0.3,
        power_kw: float = 22.0,
        telemetry_every: float = 1.0,
    ) -> None:
        self.cp_ids = cp_ids
        self.clock = clock
        self.counters = EngineCounters()
        self.session_s = session_s
        self.plug_delay = plug_delay
        self.power_kw = power_kw
        self.telemetry_every = telemetry_every
        self._publisher = publisher
        self._record_keys = record_keys
        self._supplies: dict[str, _Supply] = {}  # by CP id
        self._draining = False  # unplug_all() ran: a supply ends as soon as it starts
        self._pending: set[asyncio.Future[None]] = set()
        self.consumer = FleetReader(
            settings,
            group_id=group_id,
            partitions={Topic.DIRECTIVES: None},
            handler=self._on_directive,
        )

    @property
    def supplying(self) -> int:
        return len(self._supplies)

    def _on_directive(self, msg: Message, _record: Record) -> None:
        if not isinstance(msg, Directive):
            return
        self.counters.directives += 1
        if msg.cp_id not in self.cp_ids:
            self.counters.foreign += 1
            return
        key = self._record_keys(msg.cp_id)
        try:
            if key is None:
                raise ProofError("no record key: the CP has not registered")
            check_from_central(msg, key, msg.sent_at)
        except ProofError as exc:
            self.counters.unproven += 1
            log.warning("directive refused cp=%s reason=%s", msg.cp_id, exc.message)
            return
        running = self._supplies.get(msg.cp_id)
        if msg.action is DirectiveAction.START:
            if running is not None:
                if running.directive.session_id == msg.session_id:
                    self.counters.duplicate_starts += 1
                else:
                    self.counters.busy_starts += 1
                return
            self.counters.starts += 1
            supply = _Supply(msg, time.time(), asyncio.Event())
            if self._draining:  # a START still on its way when the drain unplugged all
                supply.end.set()
            self._supplies[msg.cp_id] = supply
            supply.task = asyncio.create_task(self._supply(supply), name=f"supply-{msg.cp_id}")
        elif (
            msg.action in (DirectiveAction.END_SUPPLY, DirectiveAction.STOP)
            and running is not None
            and msg.session_id in (None, running.directive.session_id)
        ):
            if msg.action is DirectiveAction.STOP:
                running.outcome, running.reason = Outcome.ABORTED, "stopped by the operator"
            running.end.set()

    def running(self) -> dict[str, Directive]:
        """The START of each supply running now, by CP id."""
        return {cp_id: supply.directive for cp_id, supply in self._supplies.items()}

    def report(self, cp_id: str, msg: Message) -> None:
        """Publish ``msg`` as the CP's engine does: proven with its record key."""
        self._publish(cp_id, msg)

    def _publish(self, cp_id: str, msg: Message) -> None:
        key = self._record_keys(cp_id)
        assert key is not None, "a supply runs only on a directive checked with the key"
        fut = self._publisher.publish(Topic.TELEMETRY, cp_id, prove(msg, key, Signer.CP))
        self._pending.add(fut)
        fut.add_done_callback(self._delivered)

    def _delivered(self, fut: asyncio.Future[None]) -> None:
        self._pending.discard(fut)
        if fut.cancelled() or fut.exception() is not None:
            self.counters.publish_failures += 1

    async def _supply(self, supply: _Supply) -> None:
        d = supply.directive
        assert d.session_id is not None and d.driver_id is not None
        price = d.price or 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(supply.end.wait(), self.plug_delay)  # the plug delay
        started = time.time()
        self._publish(
            d.cp_id,
            SupplyStarted(session_id=d.session_id, cp_id=d.cp_id, driver_id=d.driver_id,
                          sent_at=started),
        )  # fmt: skip
        seq, kwh = 0, 0.0
        deadline = asyncio.get_running_loop().time() + self.session_s
        loop = asyncio.get_running_loop()
        while not supply.end.is_set():
            wait = min(self.telemetry_every, deadline - loop.time())
            if wait <= 0:
                break
            try:
                await asyncio.wait_for(supply.end.wait(), wait)
                break
            except TimeoutError:
                pass
            if loop.time() >= deadline:
                break
            seq += 1
            elapsed = time.time() - started
            kwh = self.power_kw * elapsed / 3600
            self.clock.mark(d.session_id, seq)
            self._publish(
                d.cp_id,
                Telemetry(session_id=d.session_id, cp_id=d.cp_id, driver_id=d.driver_id, seq=seq,
                          kwh=round(kwh, 6), eur=round(kwh * price, 6), power_kw=self.power_kw,
                          elapsed_s=elapsed, sent_at=time.time()),
            )  # fmt: skip
            self.counters.telemetry += 1
        ticket = Ticket(
            session_id=d.session_id, cp_id=d.cp_id, driver_id=d.driver_id, last_seq=seq,
            kwh=round(kwh, 6), eur=round(kwh * price, 6), price=price, started_at=started,
            ended_at=time.time(), outcome=supply.outcome, reason=supply.reason,
        )  # fmt: skip
        self._publish(d.cp_id, ticket)
        self.counters.tickets += 1
        by_session = self.counters.tickets_by_session
        by_session[d.session_id] = by_session.get(d.session_id, 0) + 1
        self.counters.ends += 1
        self._supplies.pop(d.cp_id, None)

    def unplug_all(self) -> None:
        """End every running supply now, and each one a late START begins (the drain at
        the end of a load step)."""
        self._draining = True
        for supply in self._supplies.values():
            supply.end.set()

    async def wait_idle(self, timeout: float) -> bool:
        tasks = [s.task for s in self._supplies.values() if s.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)
        return not self._supplies and not self._pending
