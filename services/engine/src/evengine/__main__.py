"""``evengine``: the charging point engine (EV_CP_E), and ``evengine ctl``."""

from __future__ import annotations

import sys

from evproto import service
from evproto.service import Service, until_stopped

from evengine import ctl
from evengine.engine import Engine
from evengine.settings import EngineSettings

__all__ = ["SERVICE", "main"]

DESCRIPTION = (
    "The charging point engine: simulates the charger and the energy supply, answers its "
    "monitor on --listen, takes directives from Kafka and reports telemetry and tickets. "
    "`evengine ctl ko|ok|plug|unplug|status|supply [--control-socket PATH]` drives a running "
    "engine (see `evengine ctl --help`)."
)
SERVICE = Service(
    "evengine", EngineSettings, DESCRIPTION, until_stopped(lambda s, stop: Engine(s).serve(stop))
)


def main(argv: list[str] | None = None) -> int:
    """``evengine ctl …`` drives a running engine; anything else runs one."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["ctl"]:
        return ctl.main(args[1:])
    return service.main(SERVICE, args)


if __name__ == "__main__":
    sys.exit(main())
