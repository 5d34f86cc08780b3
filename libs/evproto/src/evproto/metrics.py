"""Serving Prometheus metrics from processes that have no HTTP server of their own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from evproto.config import parse_hostport
from evproto.logs import kv

__all__ = ["LOOP_LAG_BUCKETS", "METRIC_PREFIX", "serve_metrics", "watch_loop_lag"]

METRIC_PREFIX = "evcharging"
log = logging.getLogger("evproto.metrics")

LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def serve_metrics(address: str, registry: CollectorRegistry = REGISTRY) -> None:
    """Expose ``/metrics`` on ``HOST:PORT`` (empty string: disabled)."""
    if not address:
        return
    host, port = parse_hostport(address, what="--metrics")
    start_http_server(port, addr=host, registry=registry)
    log.info("metrics served %s", kv(url=f"http://{host}:{port}/metrics"))


async def watch_loop_lag(observe: Callable[[float], None], interval: float = 0.25) -> None:
    """Observe how late the event loop runs a timer, every ``interval`` seconds, forever.

    The lag is what every callback waiting behind the one running is delayed by:
    near zero on a loop with time to spare, growing when it is saturated or
    when something blocks it. Cancel the task to stop.
    """
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval
        await asyncio.sleep(interval)
        observe(max(0.0, loop.time() - due))
