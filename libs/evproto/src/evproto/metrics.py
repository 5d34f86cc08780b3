"""Serving Prometheus metrics from processes that have no HTTP server of their own."""

from __future__ import annotations

import logging

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

from evproto.config import parse_hostport
from evproto.logs import kv

__all__ = ["METRIC_PREFIX", "serve_metrics"]

METRIC_PREFIX = "evcharging"
log = logging.getLogger("evproto.metrics")


def serve_metrics(address: str, registry: CollectorRegistry = REGISTRY) -> None:
    """Expose ``/metrics`` on ``HOST:PORT`` (empty string: disabled)."""
    if not address:
        return
    host, port = parse_hostport(address, what="--metrics")
    start_http_server(port, addr=host, registry=registry)
    log.info("metrics served %s", kv(url=f"http://{host}:{port}/metrics"))
