"""One way to be a service: settings, logging, signals and exit codes, in :func:`main`.

A service's ``__main__`` describes itself as a :class:`Service` and calls
:func:`main`; every command then parses its settings the same way (``--help``,
``--version``, one-line errors), logs the same way and exits with the same
codes (:class:`ExitCode`)::

    SERVICE = Service("evmonitor", MonitorSettings, DESCRIPTION,
                      until_stopped(lambda s, stop: Monitor(s).run(stop)))
    sys.exit(main(SERVICE))

A ``ConfigError`` raised while running (e.g. the engine at ``--engine`` is another
CP) exits 2, an ``AuthError`` 3, any other error 1; each is logged once.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import importlib.metadata
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from evproto.config import ServiceSettings, build_parser, load_settings
from evproto.errors import AuthError, ConfigError, EvError
from evproto.lifecycle import run_until_stopped
from evproto.logs import kv, one_line, setup_logging
from evproto.schema import SCHEMA_VERSION

__all__ = [
    "EXIT_CODES",
    "ExitCode",
    "Service",
    "add_version_flag",
    "build_service_parser",
    "main",
    "until_stopped",
    "version_text",
]

S = TypeVar("S", bound=ServiceSettings)
log = logging.getLogger("evproto.service")


EXIT_CODES = (
    "0 stopped cleanly · 1 runtime failure · 2 bad configuration or usage · 3 credentials refused"
)


class ExitCode(enum.IntEnum):
    """What every command's exit status means (the driver adds its own above 3)."""

    STOPPED = 0  # stopped cleanly (SIGTERM/SIGINT, or the work is done)
    FAILED = 1  # a runtime failure (logged), or a drain cut short
    CONFIG = 2  # bad configuration or usage: one line on stderr names the setting
    CREDENTIALS = 3  # credentials refused by the peer


@dataclass(frozen=True)
class Service(Generic[S]):
    """What :func:`main` needs to know about one command."""

    name: str  # the command, the log component and the distribution
    settings: type[S]
    description: str
    run: Callable[[S, argparse.Namespace], int]
    # adds what the settings cannot say: sub-commands, positional arguments
    extend_parser: Callable[[argparse.ArgumentParser], None] | None = None
    exit_codes: str = ""  # for --help; empty: the common table (ExitCode)


def until_stopped(
    serve: Callable[[S, asyncio.Event], Awaitable[None]],
) -> Callable[[S, argparse.Namespace], int]:
    """A ``run`` for a long-running service: ``serve(settings, stop)`` until SIGTERM/SIGINT."""

    def run(settings: S, _args: argparse.Namespace) -> int:
        return run_until_stopped(lambda stop: serve(settings, stop))

    return run


def version_text(distribution: str) -> str:
    """``evcentral 0.1.0 (protocol schema 1)``."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"{distribution} {version} (protocol schema {SCHEMA_VERSION})"


def add_version_flag(parser: argparse.ArgumentParser, distribution: str) -> None:
    parser.add_argument(
        "--version",
        action="version",
        version=version_text(distribution),
        help="print the version and the protocol schema version, and exit",
    )


def build_service_parser(service: Service[Any]) -> argparse.ArgumentParser:
    parser = build_parser(service.settings, service.name, service.description)
    add_version_flag(parser, service.name)
    parser.epilog = f"{parser.epilog or ''} Exit codes: {service.exit_codes or EXIT_CODES}.".strip()
    if service.extend_parser is not None:
        service.extend_parser(parser)
    return parser


def main(service: Service[S], argv: Sequence[str] | None = None) -> int:
    """Parse, validate, set up logging, run; map every way out to an :class:`ExitCode`."""
    parser = build_service_parser(service)
    args = parser.parse_args(argv)
    try:
        settings = load_settings(service.settings, args)
    except ConfigError as exc:
        print(f"{service.name}: error: {one_line(exc.message)}", file=sys.stderr)
        return ExitCode.CONFIG
    setup_logging(service.name, settings.log_level, settings.log_format)
    try:
        return service.run(settings, args)
    except ConfigError as exc:
        log.error("configuration error, exiting %s", kv(error=exc.message))
        return ExitCode.CONFIG
    except AuthError as exc:
        log.error("credentials rejected, exiting %s", kv(error=exc.message))
        return ExitCode.CREDENTIALS
    except EvError as exc:
        log.error("cannot run, exiting %s", kv(error=exc.message))
        return ExitCode.FAILED
    except Exception:
        log.exception("failed, exiting")
        return ExitCode.FAILED
