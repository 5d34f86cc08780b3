"""``evstack run`` (``make run``): the whole system locally; ``evstack broker``: the broker."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

from evstack.broker import EmbeddedBroker
from evstack.localstack import run, stop_requested

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


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
