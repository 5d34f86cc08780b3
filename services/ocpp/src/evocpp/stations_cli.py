"""``evocpp stations``: the operator's view of enrolled stations, on the gateway's file.

    evocpp stations list
    evocpp stations accept ID        a pending station is Accepted at its next boot
    evocpp stations add ID           add (accepted); the password is read from stdin
    evocpp stations reject ID | remove ID

Passwords are read from stdin (never a flag: it would show in ``ps``) and
stored hashed. The running gateway reads the same file at each connection
and BootNotification, so no restart is needed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from evocpp.store import DB_NAME, StationStatus, Store

__all__ = ["main"]

EXIT_USAGE = 2
EXIT_NOT_FOUND = 4
_DEFAULT_STATE_DIR = ".evocpp"  # the gateway's --state-dir default


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="evocpp stations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=("list", "accept", "add", "reject", "remove"))
    parser.add_argument("station_id", nargs="?")
    parser.add_argument(
        "--state-dir",
        default=os.environ.get("EV_STATE_DIR", _DEFAULT_STATE_DIR),
        help="the gateway's --state-dir [env EV_STATE_DIR]",
    )
    args = parser.parse_args(argv)
    if args.action != "list" and not args.station_id:
        parser.error(f"{args.action} needs a station id")
    store = Store(Path(args.state_dir) / DB_NAME)
    try:
        return _run(store, args.action, args.station_id)
    finally:
        store.close()


def _run(store: Store, action: str, station_id: str | None) -> int:
    if action == "list":
        for record in store.stations():
            password = "password" if record.password_hash else "no password"
            print(f"{record.station_id}\t{record.status.value}\t{password}")
        return 0
    assert station_id is not None
    now = time.time()
    if action == "remove":
        if not store.remove_station(station_id):
            print(f"evocpp stations: no station {station_id}", file=sys.stderr)
            return EXIT_NOT_FOUND
        print(f"{station_id} removed")
        return 0
    if action == "add":
        password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else ""
        store.enroll(station_id, StationStatus.ACCEPTED, password or None, now)
        print(f"{station_id} accepted" + (" (password set)" if password else ""))
        return 0
    found = store.station(station_id)
    if found is None:
        print(f"evocpp stations: no station {station_id}", file=sys.stderr)
        return EXIT_NOT_FOUND
    status = StationStatus.ACCEPTED if action == "accept" else StationStatus.REJECTED
    store.enroll(station_id, status, None, now)
    print(f"{station_id} {status.value}")
    return 0
