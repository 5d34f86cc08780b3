"""``evcentral``: the control centre (see ``evcentral --help``)."""

from __future__ import annotations

import argparse
import logging
import resource
import sys

from evproto import service
from evproto.lifecycle import tune_gc_for_many_objects
from evproto.logs import kv
from evproto.service import Service, until_stopped

from evcentral.app import serve
from evcentral.settings import CentralSettings

__all__ = ["SERVICE", "main"]

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


def run(settings: CentralSettings, args: argparse.Namespace) -> int:
    _raise_open_files_limit(settings.max_open_files)
    tune_gc_for_many_objects()  # everything imported is frozen; thousands of links follow
    return until_stopped(serve)(settings, args)


SERVICE = Service(
    "evcentral",
    CentralSettings,
    "EV Charging Network central: CP registry, monitor port, supply authorization, "
    "operator dashboard and REST API.",
    run,
)


def main(argv: list[str] | None = None) -> int:
    return service.main(SERVICE, argv)


if __name__ == "__main__":
    sys.exit(main())
