"""``evdriver``: the driver app's entry point (see ``evdriver --help``)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from evproto import service
from evproto.errors import ConfigError
from evproto.metrics import serve_metrics
from evproto.service import Service

from evdriver.app import DriverApp
from evdriver.batch import BatchLine, read_batch_file, run_batch
from evdriver.cli import DESCRIPTION, EXIT_CODES, add_commands
from evdriver.commands import list_cps, request, run_idle, stop, watch
from evdriver.credentials import NotEnrolled
from evdriver.events import BrokerUnreachable, Interrupted
from evdriver.exitcodes import ExitCode
from evdriver.interrupts import Interrupts
from evdriver.link import BrokerUnavailable
from evdriver.menu import run_menu
from evdriver.metrics import DriverMetrics
from evdriver.render import make_renderer
from evdriver.settings import DriverSettings
from evdriver.watcher import ANY_CP, Limits

__all__ = ["SERVICE", "main"]

_LONG_RUNNING = {None, "batch"}  # serve --metrics (idle serves its own)


def run(settings: DriverSettings, args: argparse.Namespace) -> int:
    """One sub-command (or the menu); bad batch files are a ConfigError (exit 2)."""
    if settings.log_level.upper() != "DEBUG":
        logging.getLogger("librdkafka").setLevel(logging.CRITICAL)
    entries = read_batch_file(Path(args.file)) if args.command == "batch" else []
    metrics = DriverMetrics()
    if args.command == "idle":
        return run_idle(settings.metrics, metrics)
    if args.command in _LONG_RUNNING:
        try:
            serve_metrics(settings.metrics, metrics.registry)
        except OSError as exc:
            raise ConfigError(f"--metrics {settings.metrics}: {exc.strerror}") from None
    app = DriverApp(settings, make_renderer(settings.json), metrics, Interrupts())
    try:
        return asyncio.run(_run(app, _command(app, args, entries)))
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


SERVICE = Service("evdriver", DriverSettings, DESCRIPTION, run, add_commands, EXIT_CODES)


def main(argv: list[str] | None = None) -> int:
    return service.main(SERVICE, argv)


def _command(
    app: DriverApp, args: argparse.Namespace, entries: list[BatchLine]
) -> Callable[[], Awaitable[int]]:
    if args.command == "list":
        return lambda: list_cps(app)
    if args.command == "request":
        cp_id = None if args.cp_id == ANY_CP else args.cp_id
        limits = Limits(args.max_kwh, args.max_eur, args.minutes)
        return lambda: request(app, cp_id, limits)
    if args.command == "stop":
        return lambda: stop(app)
    if args.command == "watch":
        return lambda: watch(app)
    if args.command == "batch":
        return lambda: run_batch(app, entries, args.interval)
    return lambda: run_menu(app)


async def _run(app: DriverApp, command: Callable[[], Awaitable[int]]) -> int:
    task = asyncio.current_task()
    assert task is not None
    app.interrupts.install(task)
    try:
        return await command()
    except BrokerUnavailable as exc:
        app.renderer.show(BrokerUnreachable(bootstrap=app.settings.kafka, detail=exc.message))
        return ExitCode.BROKER
    except NotEnrolled as exc:
        print(f"evdriver: {exc.message}", file=sys.stderr)
        return ExitCode.NOT_ENROLLED
    except ConfigError as exc:  # an unusable credential file
        print(f"evdriver: {exc.message}", file=sys.stderr)
        return ExitCode.USAGE
    except asyncio.CancelledError:
        if not app.interrupts.interrupted:
            raise
        app.renderer.show(Interrupted(driver_id=app.driver_id, session_id=None))
        return ExitCode.INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
