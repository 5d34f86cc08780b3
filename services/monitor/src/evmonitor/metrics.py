"""The monitor's Prometheus metrics (``evcharging_monitor_…``) on the evproto.metrics base."""

from __future__ import annotations

import logging

from evproto.connection import LinkObserver
from evproto.metrics import ServiceMetrics
from evproto.states import Health
from prometheus_client import CollectorRegistry

from evmonitor.peers import Peer

__all__ = ["MonitorMetrics"]

log = logging.getLogger("evmonitor.protocol")


class MonitorMetrics(ServiceMetrics):
    """Counters, gauges and the latency histogram."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("monitor", registry)
        self.health_check_latency = self.histogram(
            "health_check_latency_seconds",
            "Time from a health request to the engine's answer",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
        )
        self.engine_connected = self.gauge(
            "engine_connected", "1 while the link to the engine is up"
        )
        self.central_connected = self.gauge(
            "central_connected", "1 while the CP is authenticated at the central"
        )
        self.reconnect_attempts = self.counter(
            "reconnect_attempts_total", "Connection attempts after the first one, by peer", ["peer"]
        )
        self.reports = self.counter(
            "reports_total", "Status reports sent to the central, by health", ["health"]
        )
        for peer in Peer:
            self.reconnect_attempts.labels(peer=peer.value)
        for health in Health:
            self.reports.labels(health=health.value)

    def observer(self, peer: Peer, cp_id: str) -> LinkObserver:
        """What a link reports its protocol errors to: counted here, and logged."""
        return self.link_counter(log, cp=cp_id, peer=peer.value)
