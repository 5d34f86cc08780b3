"""The engine process: wires the supply machine to Kafka, the monitor link, the
control socket, the console and the metrics, and runs its clock.

Everything runs on one event loop. Inputs (directives, keys, commands, health
notices, the clock) go to :class:`~evengine.supply.SupplyMachine`; each
:class:`~evengine.events.Step` it returns is applied in order: messages to the
:class:`~evengine.outbox.Outbox`, events to the log (and so to the console).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from evproto.config import parse_hostport
from evproto.errors import EvError, ProofError
from evproto.kafka import KafkaStats, Publisher, Record, assign_and_run, wait_until_assigned
from evproto.lifecycle import DRAIN_SECONDS
from evproto.logs import kv
from evproto.messages import (
    Directive,
    EngineInfo,
    HealthAnswer,
    SupplyResponse,
    Ticket,
)
from evproto.metrics import serve_metrics
from evproto.routing import Router
from evproto.schema import Message, MsgType
from evproto.states import Health
from evproto.vocabulary import LinkErrorKind

from evengine.console import Console
from evengine.control import ControlAnswer, ControlCommand, ControlServer
from evengine.events import MANUAL_OUTCOMES, Event, EventKind, Step
from evengine.inbox import engine_consumer
from evengine.metrics import EngineMetrics
from evengine.monitor_link import MonitorLink
from evengine.outbox import Outbox
from evengine.record_key import RecordKey
from evengine.settings import ConsoleMode, EngineSettings
from evengine.status import EngineStatus
from evengine.supply import SupplyMachine

__all__ = ["Engine"]

log = logging.getLogger("evengine")

_CLOCK_MAX_SLEEP = 1.0  # the view and the metrics refresh at least this often
# Of the drain deadline: most goes to delivering the last ticket, the rest to closing.
_TICKET_DRAIN_SECONDS = DRAIN_SECONDS * 0.5
_FLUSH_SECONDS = DRAIN_SECONDS * 0.2
_READER_STOP_SECONDS = DRAIN_SECONDS * 0.1


class Engine:
    def __init__(
        self,
        settings: EngineSettings,
        *,
        metrics: EngineMetrics | None = None,
        console: bool | None = None,
    ) -> None:
        self.settings = settings
        self.cp_id = settings.cp_id
        self.metrics = metrics or EngineMetrics()
        self.kafka_stats = KafkaStats()
        self.machine = SupplyMachine(
            settings.cp_id,
            power_kw=settings.power_kw,
            price=settings.proposed_price,
            plug_delay=settings.auto_plug_delay,
            manual_timeout=settings.manual_timeout,
        )
        self.ready = asyncio.Event()  # set once the directives are read and the monitor served
        self.link = MonitorLink(self, self.metrics, self.cp_id)
        self.keys = RecordKey(self.cp_id)
        self._want_console = console
        self._console: Console | None = None
        self._outbox: Outbox | None = None
        self._wake = asyncio.Event()
        self._manual_waiters: list[asyncio.Future[ControlAnswer]] = []
        self._dead_letters_seen = 0
        self._kafka_router = Router()
        self._kafka_router.on(MsgType.DIRECTIVE)(self._on_directive)
        self._kafka_router.on(MsgType.SUPPLY_RESPONSE)(self._on_supply_response)
        self._commands: dict[ControlCommand, Callable[[], Awaitable[ControlAnswer]]] = {
            ControlCommand.STATUS: self._cmd_status,
            ControlCommand.KO: lambda: self._cmd_step(self.machine.set_health(Health.KO, _now())),
            ControlCommand.OK: lambda: self._cmd_step(self.machine.set_health(Health.OK, _now())),
            ControlCommand.PLUG: lambda: self._cmd_step(self.machine.plug(_now())),
            ControlCommand.UNPLUG: lambda: self._cmd_step(self.machine.unplug(_now())),
            ControlCommand.SUPPLY: self._cmd_supply,
        }

    # --- the process --------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        """Run until ``stop``; then end a running supply and deliver its ticket."""
        settings = self.settings
        kafka = settings.kafka_settings()
        try:
            serve_metrics(settings.metrics, self.metrics.registry)
        except OSError as exc:
            raise EvError(f"cannot serve --metrics {settings.metrics}: {exc.strerror}") from None
        publisher = Publisher(kafka, self.kafka_stats)
        await publisher.start()
        self._outbox = Outbox(publisher, self.cp_id, self.metrics, self.keys.prove)
        consumer = engine_consumer(kafka, self.cp_id, self._on_kafka, publisher, self.kafka_stats)
        control = (
            ControlServer(Path(settings.control_socket), self.execute, self.metrics, self.cp_id)
            if settings.control_socket
            else None
        )
        reading: asyncio.Task[None] | None = None
        watcher = asyncio.create_task(self._wake_on(stop))
        try:
            host, port = parse_hostport(settings.listen, what="--listen")
            assigned = asyncio.Event()
            reading = asyncio.create_task(
                assign_and_run(consumer, stop, assigned, what="directives", logger=log),
                name="directives",
            )
            # the monitor, the control socket and the console only once the directives are
            # read: a group without offsets starts at "latest" when assigned, so a directive
            # sent once the monitor made the CP ACTIVE would be skipped by a reader still starting
            if not await wait_until_assigned(reading, assigned, stop):
                return
            reading.add_done_callback(self._reading_ended)
            await self.link.start(host, port)
            if control is not None:
                await control.start()
            self._start_console(stop)
            log.info(
                "engine ready %s",
                kv(
                    cp=self.cp_id,
                    listen=f"{host}:{self.link.port}",
                    control=settings.control_socket or None,
                    power_kw=settings.power_kw,
                ),
            )
            self.ready.set()
            await self._run_clock(stop)
            self._apply(self.machine.shutdown(_now()))
            await self._outbox.drain(_TICKET_DRAIN_SECONDS)
        finally:
            watcher.cancel()
            self._answer_manual_waiters(ControlAnswer(False, "the engine is shutting down"))
            if self._console is not None:
                self._console.stop()
            await self.link.close()
            if control is not None:
                await control.close()
            await _finish_reading(reading, stop)
            if self.kafka_stats.broker_up:  # closing waits on the broker; skip it when down
                await consumer.close()
            await publisher.close(_FLUSH_SECONDS)
            log.info("engine stopped %s", kv(cp=self.cp_id))

    def _reading_ended(self, reading: asyncio.Task[None]) -> None:
        if not reading.cancelled() and reading.exception() is not None:
            log.error(
                "reading directives failed %s", kv(cp=self.cp_id, error=repr(reading.exception()))
            )

    def _start_console(self, stop: asyncio.Event) -> None:
        mode = self.settings.console_mode
        wanted = self._want_console
        if wanted is None:
            wanted = mode is ConsoleMode.ON or (mode is ConsoleMode.AUTO and _stdin_is_terminal())
        if wanted:
            self._console = Console(status=self.status, execute=self.execute, quit=stop.set)
            self._console.start()

    async def _wake_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._wake.set()

    async def _run_clock(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._apply(self.machine.tick(_now()))
            self._count_dead_letters()
            self._wake.clear()
            due = self.machine.next_due()
            delay = _CLOCK_MAX_SLEEP if due is None else min(_CLOCK_MAX_SLEEP, due - _now())
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)

    def _count_dead_letters(self) -> None:
        seen = sum(self.kafka_stats.dead_lettered.values())
        if seen > self._dead_letters_seen:
            self.metrics.protocol_errors.labels(LinkErrorKind.KAFKA_DEAD_LETTER).inc(
                seen - self._dead_letters_seen
            )
            self._dead_letters_seen = seen

    # --- applying what the machine decided ------------------------------------------------

    def _apply(self, step: Step) -> None:
        for output in step.outputs:
            if isinstance(output, Event):
                self._show(output)
                continue
            assert self._outbox is not None
            self._outbox.send(output)
            if isinstance(output, Ticket):
                self.metrics.sessions.labels(output.outcome.value).inc()
        self.metrics.show(self.status())
        self._wake.set()  # the clock recomputes what is due next
        if self._console is not None:
            self._console.refresh()

    def _show(self, event: Event) -> None:
        level = logging.WARNING if event.warning else logging.INFO
        if event.kind is EventKind.IGNORED:
            level = logging.DEBUG
        fields = kv(cp=self.cp_id, session=event.session_id, driver=event.driver_id)
        log.log(level, "%s %s", event.text, fields)
        if event.kind in MANUAL_OUTCOMES:
            ok = event.kind is EventKind.MANUAL_AUTHORIZED
            self._answer_manual_waiters(ControlAnswer(ok, event.text))

    def _answer_manual_waiters(self, answer: ControlAnswer) -> None:
        waiters, self._manual_waiters = self._manual_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(answer)

    def status(self) -> EngineStatus:
        return dataclasses.replace(
            self.machine.status(_now()),
            location=self.settings.location,
            monitor_connected=self.link.connected,
            broker_up=self.kafka_stats.broker_up,
        )

    # --- Kafka: directives and answers to manual requests -------------------------------

    async def _on_kafka(self, msg: Message, _record: Record) -> None:
        if isinstance(msg, Directive | SupplyResponse):
            try:
                self.keys.check(msg, _now())
            except ProofError as exc:
                self.metrics.protocol_error(LinkErrorKind.UNPROVEN)
                log.warning(
                    "refused %s %s",
                    msg.TYPE.value,
                    kv(cp=self.cp_id, reason=exc.message, session=getattr(msg, "session_id", None)),
                )
                raise  # dead-lettered with the reason
        await self._kafka_router.dispatch(msg)

    async def _on_directive(self, directive: Directive) -> None:
        fresh = not self.machine.seen(directive.directive_id)
        if fresh:
            fields = kv(
                cp=self.cp_id,
                action=directive.action.value,
                session=directive.session_id,
                driver=directive.driver_id,
                id=directive.directive_id,
            )
            log.info("directive %s", fields)
        self._apply(self.machine.on_directive(directive, _now()))
        if fresh:
            self.metrics.directives.labels(directive.action.value).inc()

    async def _on_supply_response(self, response: SupplyResponse) -> None:
        self._apply(self.machine.on_supply_response(response, _now()))

    # --- commands: control socket and console keys --------------------------------------

    async def execute(self, command: ControlCommand) -> ControlAnswer:
        return await self._commands[command]()

    async def _cmd_status(self) -> ControlAnswer:
        status = self.status()
        return ControlAnswer(True, "\n".join(status.lines()), status.to_dict())

    async def _cmd_step(self, step: Step) -> ControlAnswer:
        self._apply(step)
        return ControlAnswer(step.ok, step.answer, self.status().to_dict())

    async def _cmd_supply(self) -> ControlAnswer:
        step = self.machine.request_manual(_now())
        if not step.ok:
            return await self._cmd_step(step)
        waiter: asyncio.Future[ControlAnswer] = asyncio.get_running_loop().create_future()
        self._manual_waiters.append(waiter)
        self._apply(step)
        # The machine answers by --manual-timeout at the latest; the margin is for the clock.
        try:
            answer = await asyncio.wait_for(waiter, self.settings.manual_timeout + 5.0)
        except TimeoutError:
            answer = ControlAnswer(False, "manual supply: no answer in time")
        return dataclasses.replace(answer, status=self.status().to_dict())

    # --- the monitor link (evengine.monitor_link.EngineSide) ----------------------------

    def engine_info(self) -> EngineInfo:
        return EngineInfo(
            cp_id=self.cp_id,
            location=self.settings.location,
            price=self.machine.price,
            power_kw=self.settings.power_kw,
        )

    def health_answer(self, seq: int) -> HealthAnswer:
        health = self.machine.health
        reason = "simulated fault (k key / evengine ctl ko)" if health is Health.KO else ""
        return HealthAnswer(cp_id=self.cp_id, seq=seq, health=health, reason=reason)

    def price_update(self, price: float) -> None:
        self._apply(self.machine.set_price(price))

    def central_reachable(self, reachable: bool) -> None:
        self._apply(self.machine.set_central_reachable(reachable))

    def record_key(self, key_hex: str) -> None:
        self.keys.set(key_hex)


def _now() -> float:
    return time.time()


def _stdin_is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (ValueError, OSError):
        return False


async def _finish_reading(reading: asyncio.Task[None] | None, stop: asyncio.Event) -> None:
    """The reader ends its batch once ``stop`` is set; one stuck on a down broker is cancelled."""
    if reading is None:
        return
    stop.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(reading), _READER_STOP_SECONDS)
    if not reading.done():
        reading.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await reading
