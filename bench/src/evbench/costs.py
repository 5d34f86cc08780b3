"""The instruction phase of ``make bench``: the same workload on the three servers.

The bare frame server, the ``FramedConnection`` server and the real central
(against the bench's broker, with a database of its own) each run under
callgrind (:mod:`evbench.instructions`); the central's "× bare" ratio is the
ratio of their instructions per heartbeat, which neighbours on the machine
cannot move.
"""

from __future__ import annotations

import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from evproto.errors import EvError
from evstack.broker import free_port
from evstack.localstack import console_script

from evbench.instructions import Server, Workload, measure_per_heartbeat
from evbench.session_costs import SessionWorkload, Tokens, measure_per_record

__all__ = ["SERVERS", "measure_central_records", "measure_costs"]

SERVERS = ("bare", "framed", "central")
_HOST = "127.0.0.1"
_SLOW_RUN_IDLE_S = 600.0  # no link may be dropped for silence while callgrind is slow


def _reference(name: str) -> Server:
    port = free_port()
    extra = ["--framed", "--idle-timeout", str(_SLOW_RUN_IDLE_S)] if name == "framed" else []
    argv = [sys.executable, "-m", "evbench.bare", "--listen", f"{_HOST}:{port}", *extra]
    return Server([*argv, "--log-level", "WARNING"], (_HOST, port))


def _central(bootstrap: str, workdir: Path, tokens: Tokens) -> Server:
    port, http = free_port(), free_port()
    db_dir = workdir / "db"

    def fresh_database() -> None:  # both runs register the same CPs from scratch
        shutil.rmtree(db_dir, ignore_errors=True)
        db_dir.mkdir(parents=True)

    argv = [
        console_script("evcentral"),
        "--kafka", bootstrap,
        "--db", str(db_dir / "central.db"),
        "--listen", f"{_HOST}:{port}",
        "--http", f"{_HOST}:{http}",
        "--heartbeat-interval", str(_SLOW_RUN_IDLE_S / 3),
        "--registration-burst", "100000",
        "--start-timeout", str(_SLOW_RUN_IDLE_S),
        "--log-level", "WARNING",
    ]  # fmt: skip
    return Server(
        argv,
        (_HOST, port),
        env={
            "EV_REGISTRATION_TOKEN": tokens.registration,
            "EV_ENROLLMENT_TOKEN": tokens.enrollment,
            "PYTHONUNBUFFERED": "1",
        },
        ready_url=f"http://{_HOST}:{http}/readyz",
        before_each=fresh_database,
    )


def measure_costs(
    bootstrap: str,
    workdir: Path,
    workload: Workload,
    prefix: list[str] | None = None,
    sessions: SessionWorkload | None = None,
) -> dict[str, Any]:
    """Instructions per heartbeat of each server, and the central's ratios to the others;
    with ``sessions``, also the central's per authorization and per telemetry record.

    ``prefix`` starts each server (e.g. ``taskset -c 1``: off the workload's core)."""
    tokens = Tokens(secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    token = tokens.registration
    found: dict[str, Any] = {"workload": {"cps": workload.cps, "short": workload.short,
                                          "long": workload.long}}  # fmt: skip
    for name in SERVERS:
        if name == "central":
            server = _central(bootstrap, workdir / name, tokens)
            load = Workload(workload.cps, workload.short, workload.long, token, workload.timeout)
        else:
            server, load = _reference(name), workload
        server.prefix = prefix or []
        try:
            found[name] = measure_per_heartbeat(server, load, workdir / name)
        except EvError as exc:  # InstructionError, or the workload's link failing
            found[name] = {"error": exc.message}
        except OSError as exc:  # the report says why; the load steps still run
            found[name] = {"error": f"{type(exc).__name__}: {exc}"}
    if sessions is not None:
        found["central_records"] = measure_central_records(
            bootstrap, workdir / "central-records", sessions, tokens, prefix
        )
    per = {n: found[n].get("instructions_per_heartbeat") for n in SERVERS}
    central = per["central"]
    for ref in ("bare", "framed"):
        base = per[ref]
        found[f"central_x_{ref}"] = central / base if central and base else None
    return found


def measure_central_records(
    bootstrap: str,
    workdir: Path,
    workload: SessionWorkload,
    tokens: Tokens | None = None,
    prefix: list[str] | None = None,
) -> dict[str, Any]:
    """The central's instructions per authorization and per telemetry record."""
    tokens = tokens or Tokens(secrets.token_urlsafe(24), secrets.token_urlsafe(24))
    server = _central(bootstrap, workdir, tokens)
    server.prefix = prefix or []
    try:
        return measure_per_record(server, workload, workdir, bootstrap, tokens)
    except EvError as exc:
        return {"error": exc.message}
    except OSError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
