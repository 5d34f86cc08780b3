"""The monitor's Prometheus metrics, on a registry of its own (a fresh one per test)."""

from __future__ import annotations

import logging

from evproto.connection import LinkObserver
from evproto.errors import InvalidField, MalformedMessage, MessageError, UnknownMessageType
from evproto.logs import kv
from evproto.metrics import METRIC_PREFIX
from evproto.states import Health
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from evmonitor.peers import Peer

__all__ = ["PROTOCOL_ERROR_KINDS", "MonitorMetrics"]

log = logging.getLogger("evmonitor.protocol")
_NS = f"{METRIC_PREFIX}_monitor"
_MESSAGE_ERROR_KINDS = frozenset(
    e.code for e in (MessageError, MalformedMessage, UnknownMessageType, InvalidField)
)

# Every kind the links count, so each series exists (at 0) from the start.
PROTOCOL_ERROR_KINDS = (
    "bad_lrc",
    "frame_too_large",
    "handshake",
    "idle_timeout",
    "invalid_field",
    "malformed",
    "stray_bytes",
    "unexpected_control",
    "unexpected_message",
    "unknown_type",
    "error_reply",
)


class MonitorMetrics:
    """Counters, gauges and the latency histogram."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        if registry is None:
            ProcessCollector(registry=self.registry)
        self.health_check_latency = Histogram(
            f"{_NS}_health_check_latency_seconds",
            "Time from a health request to the engine's answer",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=self.registry,
        )
        self.engine_connected = Gauge(
            f"{_NS}_engine_connected",
            "1 while the link to the engine is up",
            registry=self.registry,
        )
        self.central_connected = Gauge(
            f"{_NS}_central_connected",
            "1 while the CP is authenticated at the central",
            registry=self.registry,
        )
        self.reconnect_attempts = Counter(
            f"{_NS}_reconnect_attempts_total",
            "Connection attempts after the first one, by peer",
            ["peer"],
            registry=self.registry,
        )
        self.reports = Counter(
            f"{_NS}_reports_total",
            "Status reports sent to the central, by health",
            ["health"],
            registry=self.registry,
        )
        self.protocol_errors = Counter(
            f"{_NS}_protocol_errors_total",
            "Input from a peer that broke the protocol, by kind",
            ["kind"],
            registry=self.registry,
        )
        for peer in Peer:
            self.reconnect_attempts.labels(peer=peer.value)
        for health in Health:
            self.reports.labels(health=health.value)
        for kind in PROTOCOL_ERROR_KINDS:
            self.protocol_errors.labels(kind=kind)

    def protocol_error(self, kind: str) -> None:
        self.protocol_errors.labels(kind=kind).inc()

    def observer(self, peer: Peer, cp_id: str) -> LinkObserver:
        """What a link reports its protocol errors to: counted here, and logged."""
        return _PeerObserver(self, peer, cp_id)


class _PeerObserver:
    """An ``evproto.connection.LinkObserver`` for one peer's links."""

    def __init__(self, metrics: MonitorMetrics, peer: Peer, cp_id: str) -> None:
        self._metrics = metrics
        self._peer = peer
        self._cp_id = cp_id

    def frame_in(self) -> None:
        pass

    def frame_out(self) -> None:
        pass

    def protocol_error(self, kind: str) -> None:
        self._metrics.protocol_error(kind)
        if kind not in _MESSAGE_ERROR_KINDS:  # those are logged, with detail, where refused
            log.warning("protocol error %s", kv(cp=self._cp_id, peer=self._peer.value, kind=kind))
