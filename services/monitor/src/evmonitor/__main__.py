"""``evmonitor``: the charging point monitor (EV_CP_M); exit codes as evproto.service."""

from __future__ import annotations

import sys

from evproto import service
from evproto.service import Service, until_stopped

from evmonitor.monitor import Monitor
from evmonitor.settings import MonitorSettings

__all__ = ["SERVICE", "main"]

DESCRIPTION = (
    "Charging point monitor: checks its engine's health every interval and keeps the "
    "CP's authenticated link to the central."
)
SERVICE = Service(
    "evmonitor", MonitorSettings, DESCRIPTION, until_stopped(lambda s, stop: Monitor(s).run(stop))
)


def main(argv: list[str] | None = None) -> int:
    return service.main(SERVICE, argv)


if __name__ == "__main__":
    sys.exit(main())
