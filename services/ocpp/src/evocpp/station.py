"""A connected station, whatever its OCPP version: the CPs it holds and their supplies.

The version modules (:mod:`evocpp.v16`, :mod:`evocpp.v201`) turn OCPP calls
into the calls of :class:`Station` and implement :class:`StationCommands`;
everything the central must hear goes out from here, in our own messages:

- each connector's :class:`~evocpp.central_link.CentralLink` (the monitor role):
  opened when the station reports the connector after an accepted boot, closed
  when the WebSocket closes; its health follows StatusNotification;
- ``SupplyStarted`` / ``Telemetry`` / ``Ticket`` on ``ev.supply.telemetry`` (the
  engine role), from the station's transactions and meter values;
- directives from the central become remote starts/stops and availability
  changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Protocol

from evproto.logs import kv
from evproto.messages import (
    Directive,
    DirectiveAction,
    Outcome,
    SupplyResponse,
    Ticket,
)
from evproto.schema import Message
from evproto.states import Health

from evocpp.billing import Billing
from evocpp.central_link import CentralLink
from evocpp.connector import (
    Connector,
    ConnectorStatus,
    PendingSession,
    StopCause,
    cp_id_of,
)
from evocpp.meter import Reading
from evocpp.metrics import OcppMetrics, Version
from evocpp.settings import OcppSettings
from evocpp.store import StationStatus, Store, TransactionRecord

__all__ = ["BootAnswer", "Station", "StationCommands", "StationServices", "StopReason"]

log = logging.getLogger("evocpp.station")

_MAX_CONNECTORS = 64
_STATUS_HEALTH = {
    ConnectorStatus.AVAILABLE: Health.OK,
    ConnectorStatus.OCCUPIED: Health.OK,
    ConnectorStatus.FAULTED: Health.KO,
    ConnectorStatus.UNAVAILABLE: Health.KO,
}


class StationCommands(Protocol):
    """What the gateway can ask a station to do; False when it refused or did not answer."""

    async def remote_start(self, connector: int, id_tag: str, remote_start_id: int) -> bool: ...
    async def remote_stop(self, tx_id: str) -> bool: ...
    async def change_availability(self, connector: int, operative: bool) -> bool: ...
    async def trigger_status(self) -> bool: ...


class StationServices(Protocol):
    """What a station needs from the gateway around it."""

    settings: OcppSettings
    store: Store
    metrics: OcppMetrics

    def publish(self, cp_id: str, msg: Message) -> None: ...
    async def authorize(self, cp_id: str, id_token: str) -> SupplyResponse | None: ...
    def hold(self, cp_id: str, station: Station) -> None: ...
    def release(self, cp_id: str, station: Station) -> None: ...


@dataclass(frozen=True, slots=True)
class BootAnswer:
    accepted: bool
    pending: bool
    interval: int


@dataclass(frozen=True, slots=True)
class StopReason:
    """How a station said its transaction ended."""

    reason: str  # the station's stop reason ("Local", "EVDisconnected", …)


@dataclass(frozen=True, slots=True)
class StartAnswer:
    accepted: bool
    tx_id: str


class Station:
    def __init__(
        self,
        station_id: str,
        version: Version,
        services: StationServices,
        commands: StationCommands,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.station_id = station_id
        self.version = version
        self.accepted = False
        self._services = services
        self._settings = services.settings
        self._store = services.store
        self._commands = commands
        self._clock = clock
        self._location = f"OCPP station {station_id}"
        self._connectors: dict[int, Connector] = {}
        self._links: dict[int, tuple[CentralLink, asyncio.Task[None]]] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._next_remote_start_id = 1
        self._billing = Billing(self._store, services.publish, clock)

    # --- provisioning --------------------------------------------------------------

    def boot(self, vendor: str, model: str) -> BootAnswer:
        record = self._store.station(self.station_id)
        interval = self._settings.heartbeat_interval
        if record is None or record.status is not StationStatus.ACCEPTED:
            log.info("boot pending %s", kv(station=self.station_id, vendor=vendor, model=model))
            return BootAnswer(accepted=False, pending=record is not None, interval=interval)
        self._location = f"{vendor} {model}".strip()[:120] or self._location
        if not self.accepted:
            self.accepted = True
            log.info("boot accepted %s", kv(station=self.station_id, vendor=vendor, model=model,
                                             version=self.version.value))  # fmt: skip
        return BootAnswer(accepted=True, pending=False, interval=interval)

    def after_boot(self) -> None:
        """Ask for every connector's status now rather than waiting for the next change."""
        if self.accepted:
            self._spawn(self._commands.trigger_status())

    def status(self, number: int, status: ConnectorStatus, fault: str = "") -> None:
        if number <= 0:  # the station as a whole: it says nothing about one CP
            return
        connector = self._connector(number)
        if connector is None:
            return
        connector.status, connector.fault = status, fault
        health = _STATUS_HEALTH[status]
        reason = ""
        if status is ConnectorStatus.FAULTED:
            reason = f"station reports Faulted ({fault or 'no error code'})"
        elif status is ConnectorStatus.UNAVAILABLE:
            if connector.stopped_by_operator:
                health = Health.OK  # the operator's STOP explains it: the CP shows STOPPED
            else:
                reason = "the station reports the connector Unavailable"
        link = self._links.get(number)
        if link is not None:
            link[0].set_health(health, reason)
        if health is Health.KO and connector.tx_id is not None and connector.stop_cause is None:
            connector.stop_cause = StopCause(Outcome.ABORTED, "charging point fault")
        log.info("status %s", kv(cp=connector.cp_id, status=status.value, fault=fault or None))

    def _connector(self, number: int) -> Connector | None:
        connector = self._connectors.get(number)
        if connector is not None:
            return connector
        if number > _MAX_CONNECTORS:
            return None
        cp_id = cp_id_of(self.station_id, number)
        connector = Connector(
            number=number, cp_id=cp_id, stopped_by_operator=self._store.operator_stopped(cp_id)
        )
        self._connectors[number] = connector
        self._services.hold(cp_id, self)
        link = CentralLink(
            cp_id,
            self._location,
            self._settings,
            self._store,
            on_price=lambda price: setattr(connector, "price", price),
            on_connected=self._count_link,
        )
        task = asyncio.create_task(link.run(), name=f"central-link-{cp_id}")
        self._links[number] = (link, task)
        return connector

    def _count_link(self, connected: bool) -> None:
        self._services.metrics.central_links.inc(1 if connected else -1)

    def connector_of(self, cp_id: str) -> Connector | None:
        for connector in self._connectors.values():
            if connector.cp_id == cp_id:
                return connector
        return None

    async def close(self) -> None:
        """The WebSocket is gone: every CP of the station loses its monitor link."""
        for link, task in self._links.values():
            task.cancel()
            self._services.release(link.cp_id, self)
        for _link, task in self._links.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for spawned in list(self._tasks):
            spawned.cancel()
        self._links.clear()
        log.info("station gone %s", kv(station=self.station_id))

    def _spawn(self, work: Coroutine[object, None, object]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- directives from the central -------------------------------------------------

    def on_directive(self, directive: Directive) -> None:
        connector = self.connector_of(directive.cp_id)
        if connector is None:
            return
        action = directive.action
        if action is DirectiveAction.START:
            self._start_directive(connector, directive)
        elif action is DirectiveAction.END_SUPPLY:
            self._end_directive(connector, directive, Outcome.COMPLETED, "driver stop")
        elif action is DirectiveAction.STOP:
            connector.stopped_by_operator = True
            self._store.set_operator_stopped(connector.cp_id, True)
            self._end_directive(connector, directive, Outcome.ABORTED, "stopped by the operator")
            self._spawn(self._commands.change_availability(connector.number, operative=False))
        elif action is DirectiveAction.RESUME:
            connector.stopped_by_operator = False
            self._store.set_operator_stopped(connector.cp_id, False)
            self._spawn(self._commands.change_availability(connector.number, operative=True))

    def _start_directive(self, connector: Connector, directive: Directive) -> None:
        if directive.session_id is None or directive.driver_id is None:
            return
        seen = (
            connector.pending is not None and connector.pending.session_id == directive.session_id
        )
        if seen or connector.tx_id is not None:
            return
        remote = connector.authorizing == 0  # an idToken being authorized here: started locally
        pending = PendingSession.of(
            directive, remote=remote, remote_start_id=self._next_remote_start_id
        )
        self._next_remote_start_id += 1
        connector.pending = pending
        log.info("session authorized %s", kv(cp=connector.cp_id, session=pending.session_id,
                                              driver=pending.driver_id, remote=remote))  # fmt: skip
        if remote:
            self._spawn(self._remote_start(connector, pending))

    async def _remote_start(self, connector: Connector, pending: PendingSession) -> None:
        ok = await self._commands.remote_start(
            connector.number, pending.id_tag, pending.remote_start_id
        )
        if ok or connector.pending is not pending:
            return
        connector.pending = None
        now = self._clock()
        self._services.publish(
            connector.cp_id,
            Ticket(
                session_id=pending.session_id, cp_id=connector.cp_id, driver_id=pending.driver_id,
                last_seq=0, kwh=0.0, eur=0.0, price=pending.price, started_at=now, ended_at=now,
                outcome=Outcome.CANCELLED, reason="the station refused the remote start",
            ),
        )  # fmt: skip

    def _end_directive(
        self, connector: Connector, directive: Directive, outcome: Outcome, reason: str
    ) -> None:
        if connector.tx_id is not None:
            tx = self._store.transaction(connector.tx_id)
            if directive.session_id is None or (tx and tx.session_id == directive.session_id):
                self._request_stop(connector, StopCause(outcome, reason))
            return
        pending = connector.pending
        if pending is not None and directive.session_id in (None, pending.session_id):
            connector.pending = None  # never started: the central closes it (cancelled)

    def _request_stop(self, connector: Connector, cause: StopCause) -> None:
        if connector.tx_id is None or connector.stop_requested:
            return
        connector.stop_requested = True
        if connector.stop_cause is None:
            connector.stop_cause = cause
        self._spawn(self._commands.remote_stop(connector.tx_id))

    # --- authorization of idTokens ---------------------------------------------------

    def tag_of_remote_start(self, number: int, remote_start_id: int) -> str | None:
        connector = self._connectors.get(number)
        pending = connector.pending if connector else None
        if pending is not None and pending.remote_start_id == remote_start_id:
            return pending.id_tag
        return None

    def knows_tag(self, id_tag: str) -> bool:
        """A tag the gateway itself gave a station in a remote start."""
        return any(c.pending and c.pending.id_tag == id_tag for c in self._connectors.values())

    async def authorize_tag(self, id_tag: str, number: int | None = None) -> bool:
        """Ask the central to authorize ``id_tag`` at a connector (the station's choice, else
        the one being prepared, else the first available)."""
        if self.knows_tag(id_tag):
            return True
        connector = self._pick_connector(number)
        if connector is None:
            return False
        connector.authorizing += 1
        try:
            response = await self._services.authorize(connector.cp_id, id_tag)
            if response is None or not response.authorized:
                log.info("idToken refused %s", kv(cp=connector.cp_id,
                         reason=response.reason if response else "no answer"))  # fmt: skip
                return False
            # the START directive for this session follows the answer: wait for it
            deadline = self._clock() + self._settings.authorize_timeout
            while self._clock() < deadline:
                pending = connector.pending
                if pending is not None and pending.session_id == response.session_id:
                    pending.id_tag = id_tag
                    pending.remote = False
                    return True
                await asyncio.sleep(0.05)
            return False
        finally:
            connector.authorizing -= 1

    def _pick_connector(self, number: int | None) -> Connector | None:
        if number is not None and number > 0:
            return self._connector(number)
        candidates = sorted(self._connectors.values(), key=lambda c: c.number)
        for wanted in (ConnectorStatus.OCCUPIED, ConnectorStatus.AVAILABLE):
            for connector in candidates:
                if connector.status is wanted and connector.tx_id is None:
                    return connector
        return candidates[0] if candidates else None

    # --- transactions ----------------------------------------------------------------

    async def start_transaction(
        self,
        number: int,
        id_tag: str | None,
        meter_wh: float,
        tx_id: str | None = None,
        replay_key: str = "",
    ) -> StartAnswer:
        """The station started a transaction: bind it to its session and tell the central.

        ``tx_id``: the station's own (2.0.1); else the gateway hands one out (1.6), and
        ``replay_key`` (what identifies the start: connector, tag, meter, time) gives a
        StartTransaction the station sends again, its answer lost, the same transaction.
        """
        if replay_key:
            tx_id = self._store.transaction_started_as(f"{self.station_id}|{replay_key}")
        if tx_id is not None and (known := self._store.transaction(tx_id)) is not None:
            return StartAnswer(True, known.tx_id)  # a replay: already bound
        connector = self._connector(number)
        if connector is None:
            return StartAnswer(False, tx_id or "0")
        pending = connector.pending
        if pending is None or (id_tag is not None and id_tag != pending.id_tag):
            if id_tag is None or not await self.authorize_tag(id_tag, number):
                return StartAnswer(False, tx_id or str(self._store.next_transaction_number()))
            pending = connector.pending
            assert pending is not None
        tx_id = tx_id or str(self._store.next_transaction_number())
        if replay_key:
            self._store.remember_start(f"{self.station_id}|{replay_key}", tx_id)
        self._billing.open(
            TransactionRecord(
                tx_id=tx_id, station_id=self.station_id, cp_id=connector.cp_id,
                session_id=pending.session_id, driver_id=pending.driver_id, price=pending.price,
                started_at=self._clock(), meter_start_wh=meter_wh, last_seq=0, last_kwh=0.0,
                max_kwh=pending.max_kwh, ended=False,
            )
        )  # fmt: skip
        connector.pending = None
        connector.tx_id = tx_id
        connector.stop_cause = None
        connector.stop_requested = False
        connector.limits = {"max_eur": pending.max_eur, "max_minutes": pending.max_minutes}
        return StartAnswer(True, tx_id)

    def meter(self, tx_id: str, reading: Reading) -> None:
        """A reading of the energy register during a transaction: the next telemetry
        (meter values without the register say nothing)."""
        if reading.energy_wh is None:
            return
        tx = self._store.transaction(tx_id)
        if tx is None or tx.ended:
            return
        kwh, elapsed = self._billing.report(tx, reading.energy_wh, reading.power_w)
        self._check_limits(tx, kwh, elapsed)

    def _check_limits(self, tx: TransactionRecord, kwh: float, elapsed: float) -> None:
        connector = self.connector_of(tx.cp_id)
        if connector is None or connector.tx_id != tx.tx_id:
            return
        max_eur = connector.limits.get("max_eur")
        max_minutes = connector.limits.get("max_minutes")
        reason = ""
        if tx.max_kwh is not None and kwh >= tx.max_kwh:
            reason = f"limit reached: {tx.max_kwh:g} kWh"
        elif max_eur is not None and kwh * tx.price >= max_eur:
            reason = f"limit reached: {max_eur:g} €"
        elif max_minutes is not None and elapsed >= max_minutes * 60:
            reason = f"limit reached: {max_minutes:g} min"
        if reason:
            self._request_stop(connector, StopCause(Outcome.COMPLETED, reason))

    def stop_transaction(self, tx_id: str, meter_wh: float | None, stop: StopReason) -> str:
        """The station ended a transaction: the ticket, once. Returns what was done."""
        cause = None
        for connector in self._connectors.values():
            if connector.tx_id == tx_id:
                cause = connector.stop_cause
                connector.tx_id = None
                connector.stop_cause = None
                connector.stop_requested = False
        done = self._billing.close(tx_id, meter_wh, cause, stop.reason)
        self._services.metrics.transactions.labels(result=done).inc()
        return done

    def transaction_of(self, tx_id: str) -> TransactionRecord | None:
        return self._store.transaction(tx_id)
