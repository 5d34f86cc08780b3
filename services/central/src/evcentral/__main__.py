"""``evcentral``: the control centre (see ``evcentral --help``)."""

from __future__ import annotations

import logging
import resource
import sys

from evproto.config import build_parser, load_settings
from evproto.errors import ConfigError
from evproto.lifecycle import run_until_stopped, tune_gc_for_many_objects
from evproto.logs import kv, setup_logging

from evcentral.app import serve
from evcentral.settings import CentralSettings

log = logging.getLogger("evcentral")


def _raise_open_files_limit(wanted: int) -> None:
    """Thousands of monitor connections need thousands of file descriptors; a bounded
    number, so a flood of connections runs into a cap, not the kernel's table."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.warning("cannot raise the open files limit %s", kv(soft=soft, error=exc))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(
        CentralSettings,
        "evcentral",
        "EV Charging Network central: CP registry, monitor port, supply authorization, "
        "operator dashboard and REST API.",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(CentralSettings, args)
    except ConfigError as exc:
        print(f"evcentral: {exc.message}", file=sys.stderr)
        return 2
    setup_logging("evcentral", settings.log_level)
    _raise_open_files_limit(settings.max_open_files)
    tune_gc_for_many_objects()  # everything imported is frozen; thousands of links follow
    return run_until_stopped(lambda stop: serve(settings, stop))


if __name__ == "__main__":
    sys.exit(main())
