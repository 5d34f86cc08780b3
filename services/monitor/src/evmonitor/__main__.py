"""``evmonitor``: the charging point monitor (EV_CP_M).

Exit codes: 0 stopped by SIGTERM/SIGINT · 2 bad configuration (flags, secret
file, the engine is another CP) · 3 credentials rejected by the central.
"""

from __future__ import annotations

import logging
import sys

from evproto.config import build_parser, load_settings
from evproto.errors import AuthError, ConfigError
from evproto.lifecycle import run_until_stopped
from evproto.logs import kv, setup_logging

from evmonitor.monitor import Monitor
from evmonitor.settings import MonitorSettings

__all__ = ["EXIT_AUTH", "EXIT_CONFIG", "main"]

EXIT_CONFIG = 2
EXIT_AUTH = 3
log = logging.getLogger("evmonitor")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(
        MonitorSettings,
        "evmonitor",
        "Charging point monitor: checks its engine's health every interval and keeps the "
        "CP's authenticated link to the central.",
    )
    parser.epilog = (
        f"{parser.epilog} Exit codes: 0 stopped by a signal, {EXIT_CONFIG} bad configuration, "
        f"{EXIT_AUTH} credentials rejected by the central."
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(MonitorSettings, args)
    except ConfigError as exc:
        parser.print_usage(sys.stderr)
        print(f"evmonitor: error: {exc.message}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging("evmonitor")
    try:
        return run_until_stopped(Monitor(settings).run)
    except ConfigError as exc:
        log.error("configuration error, exiting %s", kv(cp=settings.cp_id, error=exc.message))
        return EXIT_CONFIG
    except AuthError as exc:
        log.error("credentials rejected, exiting %s", kv(cp=settings.cp_id, error=exc.message))
        return EXIT_AUTH


if __name__ == "__main__":
    sys.exit(main())
