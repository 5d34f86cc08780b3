"""``evocpp``: the OCPP gateway, and ``evocpp stations`` (the enrolled stations).

Exit codes (evproto.service.ExitCode): 0 stopped cleanly · 1 runtime failure ·
2 bad configuration or usage.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from evproto.lifecycle import tune_gc_for_many_objects
from evproto.service import Service, until_stopped
from evproto.service import main as service_main

from evocpp import stations_cli
from evocpp.gateway import Gateway
from evocpp.settings import OcppSettings

__all__ = ["SERVICE", "main"]

DESCRIPTION = (
    "OCPP gateway: OCPP-J 1.6 and 2.0.1 stations connect to ws(s)://HOST:PORT/ocpp/<stationId> "
    "and each connector joins the network as the charging point <stationId>-<connector>. "
    "`evocpp stations list|accept|add|reject|remove` manages the enrolled stations."
)


async def serve(settings: OcppSettings, stop: asyncio.Event) -> None:
    tune_gc_for_many_objects()
    await Gateway(settings).serve(stop)


SERVICE = Service("evocpp", OcppSettings, DESCRIPTION, until_stopped(serve))


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["stations"]:
        return stations_cli.main(args[1:])
    return service_main(SERVICE, args)


if __name__ == "__main__":
    sys.exit(main())
