"""The one-shot commands: list, request, watch, stop, and the pod's idle process."""

from __future__ import annotations

import asyncio

from evproto.errors import BrokerError
from evproto.lifecycle import run_until_stopped
from evproto.metrics import serve_metrics
from evproto.retry import peer_retry

from evdriver.app import DriverApp
from evdriver.cpstates import CpSnapshot, read_cp_states
from evdriver.events import CpListed, NoSession, TicketReceived
from evdriver.exitcodes import ExitCode
from evdriver.link import BrokerUnavailable
from evdriver.metrics import DriverMetrics
from evdriver.watcher import Limits, SessionResult, SessionWatcher

__all__ = ["list_cps", "request", "run_idle", "stop", "watch"]

_LIST_TIMEOUT = 10.0  # seconds to read the CP-state topic to its end


async def fetch_cps(app: DriverApp) -> list[CpListed]:
    """The CPs as list events; BrokerUnavailable after the retries."""
    snapshot = CpSnapshot()
    try:
        async for attempt in peer_retry("broker", attempts=app.settings.connect_attempts, cap=5.0):
            with attempt:
                snapshot = await read_cp_states(app.kafka, _LIST_TIMEOUT)
    except BrokerError as exc:
        raise BrokerUnavailable(exc.message) from None
    if snapshot.skipped:
        app.metrics.bad_input.labels(source="cp_state").inc(snapshot.skipped)
    return [
        CpListed(cp_id=cp.cp_id, location=cp.location, price=cp.price, state=cp.state)
        for cp in snapshot.cps
    ]


async def list_cps(app: DriverApp) -> int:
    app.renderer.show_cps(await fetch_cps(app))
    record = app.store().load()
    if record is not None and record.unfinished:
        app.renderer.say(
            f"You have an unfinished session at {record.cp_id or 'a CP'} ({record.status.value}); "
            f"`evdriver --id {app.driver_id} watch` follows it."
        )
    return ExitCode.COMPLETED


async def resume_unfinished(app: DriverApp, watcher: SessionWatcher) -> SessionResult | None:
    """A previous run's unfinished session is shown to its end before anything new."""
    if not watcher.has_unfinished:
        return None
    return await app.play(watcher, watcher.resume())


def exit_code(result: SessionResult | None) -> int:
    return ExitCode.COMPLETED if result is None else result.exit_code


async def request(app: DriverApp, cp_id: str | None, limits: Limits) -> int:
    async with app.session() as watcher:
        resumed = await resume_unfinished(app, watcher)
        if resumed is not None and resumed.exit_code is ExitCode.INTERRUPTED:
            return ExitCode.INTERRUPTED
        return exit_code(await app.play(watcher, watcher.request(cp_id, limits)))


async def watch(app: DriverApp) -> int:
    """Follow the running session, or show the ticket a previous run missed."""
    record = app.store().load()
    if record is None or not record.unfinished:
        app.renderer.show(NoSession(driver_id=app.driver_id))
        ticket = None if record is None else record.ticket_message()
        if ticket is not None:
            app.renderer.say("Your last ticket:")
            app.renderer.show(TicketReceived(ticket=ticket))
        return ExitCode.COMPLETED
    async with app.session() as watcher:
        return exit_code(await resume_unfinished(app, watcher))


async def stop(app: DriverApp) -> int:
    """Ask the central to end this driver's running supply and show the ticket."""
    record = app.store().load()
    if record is None or not record.unfinished:
        app.renderer.show(NoSession(driver_id=app.driver_id))
        return ExitCode.COMPLETED
    async with app.session() as watcher:
        return exit_code(await app.play(watcher, watcher.stop_supply()))


def run_idle(settings_metrics: str, metrics: DriverMetrics) -> int:
    """The driver pod's main process: serve /metrics until SIGTERM/SIGINT, exit 0."""
    serve_metrics(settings_metrics, metrics.registry)

    async def wait(stop: asyncio.Event) -> None:
        await stop.wait()

    return run_until_stopped(wait)
