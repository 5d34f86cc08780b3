"""``evstack run`` (``make run``): the whole system locally; ``evstack broker``: the broker."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from pathlib import Path

from evstack.broker import EmbeddedBroker
from evstack.localstack import LocalStack

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evstack", description="Development tooling of the EV Charging Network."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    stack = commands.add_parser(
        "run",
        help="the whole system on the embedded broker",
        description="Run the EV Charging Network locally: broker, central, charging points.",
    )
    stack.add_argument("--cps", type=int, default=3, help="number of charging points")
    stack.add_argument("--workdir", type=Path, default=Path(".run"), help="state, logs, database")
    stack.add_argument("--kafka-port", type=int, default=9092)
    stack.add_argument("--listen-port", type=int, default=3440)
    stack.add_argument("--http-port", type=int, default=8080)
    stack.add_argument("--ocpp-port", type=int, default=9000, help="the OCPP gateway's port")
    broker = commands.add_parser(
        "broker",
        help="the embedded Kafka broker alone, in the foreground",
        description="Run the embedded Kafka-compatible broker (Tansu) in the foreground.",
    )
    broker.add_argument("--port", type=int, default=9092, help="loopback port to listen on")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "broker":
        return run_broker(args.port)
    if args.cps < 0:
        parser.error("--cps must be 0 or more")
    return run(
        args.cps,
        args.workdir,
        kafka_port=args.kafka_port,
        listen_port=args.listen_port,
        http_port=args.http_port,
        ocpp_port=args.ocpp_port,
    )


def run_broker(port: int) -> int:
    broker = EmbeddedBroker(port)
    broker.start()
    print(f"embedded Kafka broker on {broker.bootstrap} (Ctrl-C stops it)", flush=True)
    stopping = stop_requested()
    while not stopping.is_set() and broker.running:
        time.sleep(0.2)
    broker.stop()
    return 0


def run(
    cps: int,
    workdir: Path,
    *,
    kafka_port: int,
    listen_port: int,
    http_port: int,
    ocpp_port: int,
) -> int:
    """``make run``: start everything, report what died, stop it all on SIGINT/SIGTERM."""
    stack = LocalStack(workdir, kafka_port, listen_port, http_port, ocpp_port)
    stopping = stop_requested()
    try:
        stack.start_broker()
        stack.start_central()
        token_file = stack.allow_driver_enrollment(Path(".evdriver"))
        for i in range(cps):
            stack.start_cp(i)
        stack.start_gateway()
        print(
            f"""
EV Charging Network is running ({cps} charging points).
  dashboard        {stack.http_url}/   (asks for a token)
  operator token   file {workdir}/operator-token   (reads and actions)
  viewer token     file {workdir}/viewer-token     (reads only, drivers pseudonymised)
  Kafka bootstrap  {stack.bootstrap}
  monitor port     {stack.central_address}
  OCPP gateway     {stack.ocpp_url}   (subprotocol ocpp1.6 or ocpp2.0.1)
                   enrollment open: new stations are accepted automatically, no
                   credentials needed (local development; the chart's default is closed);
                   each connector N appears as the CP <stationId>-N
  logs             {workdir}/*.log, {workdir}/CP-*/*.log
  drivers          enroll themselves on first use with {token_file}

Try:  .venv/bin/evdriver --id D1 --kafka {stack.bootstrap} request CP-0 --max-kwh 0.05
      .venv/bin/evengine ctl ko --control-socket {workdir}/CP-0/engine.sock
Ctrl-C stops everything.""",
            flush=True,
        )
        while not stopping.is_set():
            for proc in stack.processes():
                if proc.proc is not None and not proc.alive:
                    print(
                        f"{proc.name} exited with code {proc.proc.returncode}; see {proc.log_path}"
                    )
                    proc.proc = None
            time.sleep(0.5)
    finally:
        print("stopping…", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stack.stop()
    return 0


def stop_requested() -> threading.Event:
    """An event set by SIGINT or SIGTERM (for a foreground command's main loop)."""
    stopping = threading.Event()

    def on_signal(_sig: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stopping


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
