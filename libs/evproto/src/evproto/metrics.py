"""A service's Prometheus metrics: the base every service's metrics class extends.

Names are ``evcharging_<component>_<what>_<unit>``; each service has its own
registry, with the process, platform and GC collectors, and its
``…_protocol_errors_total`` counter pre-initialised with every
:class:`~evproto.vocabulary.LinkErrorKind`. :class:`LinkCounter` is the one
``LinkObserver`` (evproto.connection) every service hands its links.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    make_wsgi_app,
    start_http_server,
)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from evproto.config import parse_hostport
from evproto.errors import InvalidField, MalformedMessage, MessageError, UnknownMessageType
from evproto.logs import kv
from evproto.vocabulary import LinkErrorKind

__all__ = [
    "LOOP_LAG_BUCKETS",
    "METRIC_PREFIX",
    "LinkCounter",
    "ServiceMetrics",
    "serve_metrics",
    "watch_loop_lag",
]

METRIC_PREFIX = "evcharging"
LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
log = logging.getLogger("evproto.metrics")

# Logged where the message is refused, with its detail; the observer only counts them.
_MESSAGE_ERRORS = (MessageError, MalformedMessage, UnknownMessageType, InvalidField)
_REFUSED_WHERE_SEEN = frozenset(LinkErrorKind(error.code) for error in _MESSAGE_ERRORS)


class ServiceMetrics:
    """The registry, the name prefix and the protocol-error counter of one component."""

    def __init__(
        self,
        component: str,
        registry: CollectorRegistry | None = None,
        *,
        errors_help: str = "Input from a peer that broke the protocol, by kind",
        count_frames: bool = False,
    ) -> None:
        self.prefix = f"{METRIC_PREFIX}_{component}"
        self.registry = CollectorRegistry() if registry is None else registry
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.protocol_errors = self.counter("protocol_errors_total", errors_help, ["kind"])
        for kind in LinkErrorKind:
            self.protocol_errors.labels(kind)
        self.frames_received: Counter | None = None
        self.frames_sent: Counter | None = None
        if count_frames:
            self.frames_received = self.counter(
                "frames_received_total", "Valid frames received from peers"
            )
            self.frames_sent = self.counter(
                "frames_sent_total", "Frames sent to peers and acknowledged"
            )

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        return Counter(f"{self.prefix}_{name}", documentation, labels, registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        return Gauge(f"{self.prefix}_{name}", documentation, labels, registry=self.registry)

    def histogram(
        self, name: str, documentation: str, buckets: Sequence[float], labels: Sequence[str] = ()
    ) -> Histogram:
        return Histogram(
            f"{self.prefix}_{name}", documentation, labels, buckets=buckets, registry=self.registry
        )

    def protocol_error(self, kind: LinkErrorKind) -> None:
        self.protocol_errors.labels(kind).inc()

    def link_counter(self, logger: logging.Logger | None = None, **ids: object) -> LinkCounter:
        """The observer for a link; with ``logger``, link-level errors are also logged."""
        return LinkCounter(self, logger, ids)


class LinkCounter:
    """An ``evproto.connection.LinkObserver``: counts a link's frames and errors."""

    __slots__ = ("_frames_in", "_frames_out", "_ids", "_log", "_metrics")

    def __init__(
        self, metrics: ServiceMetrics, logger: logging.Logger | None, ids: dict[str, object]
    ) -> None:
        self._metrics = metrics
        self._frames_in = metrics.frames_received
        self._frames_out = metrics.frames_sent
        self._log = logger
        self._ids = ids

    def frame_in(self) -> None:
        if self._frames_in is not None:
            self._frames_in.inc()

    def frame_out(self) -> None:
        if self._frames_out is not None:
            self._frames_out.inc()

    def protocol_error(self, kind: LinkErrorKind) -> None:
        self._metrics.protocol_error(kind)
        if self._log is not None and kind not in _REFUSED_WHERE_SEEN:
            self._log.warning("protocol error %s", kv(**self._ids, kind=kind.value))


def serve_metrics(
    address: str, registry: CollectorRegistry, ready: Callable[[], bool] | None = None
) -> None:
    """Expose ``/metrics`` on ``HOST:PORT`` (empty string: disabled).

    With ``ready``, ``/readyz`` answers 200 while it holds and 503 otherwise: a
    Kubernetes readiness probe on what the service knows (the monitor: authenticated
    at the central), not merely on the process being up.
    """
    if not address:
        return
    host, port = parse_hostport(address, what="--metrics")
    if ready is None:
        start_http_server(port, addr=host, registry=registry)
    else:
        server = make_server(
            host,
            port,
            _with_readyz(make_wsgi_app(registry), ready),
            ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics served %s", kv(url=f"http://{host}:{port}/metrics"))


_WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _with_readyz(metrics: _WsgiApp, ready: Callable[[], bool]) -> _WsgiApp:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/readyz":
            return metrics(environ, start_response)
        ok = ready()
        start_response(
            "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")]
        )
        return [b"ready\n" if ok else b"not ready\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    """No access log line per scrape (as prometheus_client's own server)."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


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
