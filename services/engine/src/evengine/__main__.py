"""``evengine``: the charging point engine (EV_CP_E), and ``evengine ctl``."""

from __future__ import annotations

import logging
import sys

from evproto.config import build_parser, load_settings
from evproto.errors import ConfigError, EvError
from evproto.lifecycle import run_until_stopped
from evproto.logs import setup_logging

from evengine import ctl
from evengine.engine import Engine
from evengine.settings import EngineSettings

__all__ = ["main"]

DESCRIPTION = (
    "The charging point engine: simulates the charger and the energy supply, answers its "
    "monitor on --listen, takes directives from Kafka and reports telemetry and tickets. "
    "`evengine ctl ko|ok|plug|unplug|status|supply [--control-socket PATH]` drives a running "
    "engine (see `evengine ctl --help`)."
)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["ctl"]:
        return ctl.main(args[1:])
    parser = build_parser(EngineSettings, "evengine", DESCRIPTION)
    try:
        settings = load_settings(EngineSettings, parser.parse_args(args))
    except ConfigError as exc:
        parser.print_usage(sys.stderr)
        print(f"evengine: error: {exc.message}", file=sys.stderr)
        return 2
    setup_logging("evengine", settings.log_level)
    engine = Engine(settings)
    try:
        return run_until_stopped(engine.serve)
    except EvError as exc:
        logging.getLogger("evengine").error("cannot run: %s", exc.message)
        return 1


if __name__ == "__main__":
    sys.exit(main())
