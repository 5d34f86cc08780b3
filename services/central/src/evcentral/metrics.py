"""The central's Prometheus metrics (``evcharging_central_…``), label values pre-initialised.

Each :class:`CentralMetrics` registers on the registry it is given: the
process-wide default in production, a fresh one per central in tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from evproto.errors import (
    BadChecksum,
    FrameTooLarge,
    InvalidField,
    MalformedMessage,
    MessageError,
    UnknownMessageType,
)
from evproto.kafka import KafkaStats
from evproto.messages import Origin
from evproto.metrics import LOOP_LAG_BUCKETS
from evproto.states import CpState
from evproto.topics import Topic
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from evcentral.authorization import AUTHORIZED_CODE, DenyCode

__all__ = [
    "ABORT_REASONS",
    "CAP_REASONS",
    "CP_STATE_VALUES",
    "PROTOCOL_ERROR_KINDS",
    "CentralMetrics",
]

_P = "evcharging_central"

ABORT_REASONS = ("fault", "operator_stop", "start_timeout", "engine_lost", "driver_cancel")
PROTOCOL_ERROR_KINDS = (
    "handshake",
    "handshake_timeout",
    "idle_timeout",
    FrameTooLarge.code,
    BadChecksum.code,
    "stray_bytes",
    "unexpected_control",
    MalformedMessage.code,
    UnknownMessageType.code,
    InvalidField.code,
    MessageError.code,
    "not_authenticated",
    "auth_failed",
    "unexpected_message",
    "error_budget",
)
CAP_REASONS = (
    "pending_monitors",  # --max-pending-monitors reached
    "pending_per_address",  # --max-pending-per-address reached
    "event_clients",  # --max-event-clients reached: 503
    "event_client_slow",  # a stream not accepting a write within --event-write-timeout
    "event_client_behind",  # a stream too far behind the changes
)
IGNORED_KINDS = (
    "duplicate_telemetry",
    "late_telemetry",
    "late_ticket",
    "late_supply_started",
    "stop",
)
CP_STATE_VALUES = {
    CpState.ACTIVE: 0,
    CpState.SUPPLYING: 1,
    CpState.WAITING_FOR_SUPPLY: 2,
    CpState.STOPPED: 3,
    CpState.BROKEN_DOWN: 4,
    CpState.DISCONNECTED: 5,
}
_HTTP_METHODS = ("GET", "POST", "PUT")
_HTTP_STATUSES = ("200", "202", "400", "401", "404", "405", "500", "503")


class CentralMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        r = registry
        self.sessions_started = Counter(
            f"{_P}_sessions_started_total", "Sessions authorized", ["origin"], registry=r
        )
        self.sessions_completed = Counter(
            f"{_P}_sessions_completed_total", "Sessions ended with a completed ticket", registry=r
        )
        self.sessions_aborted = Counter(
            f"{_P}_sessions_aborted_total",
            "Sessions aborted or cancelled, by cause",
            ["reason"],
            registry=r,
        )
        self.session_duration = Histogram(
            f"{_P}_session_duration_seconds",
            "Supply duration of ended sessions",
            buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
            registry=r,
        )
        self.session_energy = Histogram(
            f"{_P}_session_energy_kwh",
            "Energy delivered per ended session",
            buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 50, 100),
            registry=r,
        )
        self.energy_delivered = Counter(
            f"{_P}_energy_delivered_kwh_total", "Energy billed on tickets", registry=r
        )
        self.revenue = Counter(f"{_P}_revenue_eur_total", "Amount billed on tickets", registry=r)
        self.authorization_latency = Histogram(
            f"{_P}_authorization_latency_seconds",
            "From a request's sent_at to its decision",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.event_loop_lag = Histogram(
            f"{_P}_event_loop_lag_seconds",
            "How late the event loop ran a 250 ms timer (saturation or a blocking call)",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self.authorizations = Counter(
            f"{_P}_authorizations_total",
            "Supply requests decided",
            ["result", "reason"],
            registry=r,
        )
        self.cps = Gauge(f"{_P}_cps", "Charging points per state", ["state"], registry=r)
        self.cp_state = Gauge(
            f"{_P}_cp_state",
            "State of each CP: 0 ACTIVE, 1 SUPPLYING, 2 WAITING_FOR_SUPPLY, 3 STOPPED, "
            "4 BROKEN_DOWN, 5 DISCONNECTED",
            ["cp_id"],
            registry=r,
        )
        self.connected_monitors = Gauge(
            f"{_P}_connected_monitors", "Authenticated monitor connections", registry=r
        )
        self.frames_received = Counter(
            f"{_P}_frames_received_total", "Valid frames received from monitors", registry=r
        )
        self.frames_sent = Counter(
            f"{_P}_frames_sent_total", "Frames sent to monitors and acknowledged", registry=r
        )
        self.protocol_errors = Counter(
            f"{_P}_protocol_errors_total", "Bad input on the monitor port", ["kind"], registry=r
        )
        self.ignored_messages = Counter(
            f"{_P}_ignored_messages_total",
            "Kafka messages ignored: duplicates, or late for an ended session",
            ["kind"],
            registry=r,
        )
        self.pending_monitors = Gauge(
            f"{_P}_pending_monitor_connections",
            "Monitor connections not yet authenticated",
            registry=r,
        )
        self.event_clients = Gauge(f"{_P}_event_clients", "Open /api/events streams", registry=r)
        self.capped = Counter(
            f"{_P}_connections_capped_total",
            "Connections refused or dropped by a cap (docs/reliability.md)",
            ["reason"],
            registry=r,
        )
        self.ready = Gauge(f"{_P}_ready", "1 when /readyz answers 200", registry=r)
        self.http_requests = Counter(
            f"{_P}_http_requests_total", "HTTP requests served", ["method", "status"], registry=r
        )
        self.kafka = KafkaCollector()
        r.register(self.kafka)
        self._preinitialise()

    def _preinitialise(self) -> None:
        for origin in Origin:
            self.sessions_started.labels(origin.value)
        for reason in ABORT_REASONS:
            self.sessions_aborted.labels(reason)
        self.authorizations.labels("authorized", AUTHORIZED_CODE)
        for code in DenyCode:
            self.authorizations.labels("denied", code.value)
        for state in CpState:
            self.cps.labels(state.value)
        for kind in PROTOCOL_ERROR_KINDS:
            self.protocol_errors.labels(kind)
        for kind in IGNORED_KINDS:
            self.ignored_messages.labels(kind)
        for reason in CAP_REASONS:
            self.capped.labels(reason)
        for method in _HTTP_METHODS:
            for status in _HTTP_STATUSES:
                self.http_requests.labels(method, status)

    def set_cp_state(self, cp_id: str, old: CpState | None, new: CpState) -> None:
        if old is not None:
            self.cps.labels(old.value).dec()
        self.cps.labels(new.value).inc()
        self.cp_state.labels(cp_id).set(CP_STATE_VALUES[new])

    def protocol_error(self, kind: str) -> None:
        self.protocol_errors.labels(kind).inc()


class KafkaCollector(Collector):
    """Kafka counters read from the evproto clients' :class:`KafkaStats` at scrape time."""

    def __init__(self) -> None:
        self.stats: list[KafkaStats] = []
        self.lag: Callable[[], dict[str, int]] = dict

    def collect(self) -> Iterator[Metric]:
        consumed = CounterMetricFamily(
            f"{_P}_kafka_messages_consumed", "Kafka records consumed", labels=["topic"]
        )
        produced = CounterMetricFamily(
            f"{_P}_kafka_messages_produced", "Kafka records delivered", labels=["topic"]
        )
        dead = CounterMetricFamily(
            f"{_P}_kafka_dead_letters", "Poison records moved to ev.deadletter", labels=["topic"]
        )
        lag = GaugeMetricFamily(
            f"{_P}_kafka_consumer_lag_messages",
            "Records behind the high watermark",
            labels=["topic"],
        )
        failures = CounterMetricFamily(
            f"{_P}_kafka_publish_failures", "Records the broker did not take"
        )
        lag_now = self.lag()
        for topic in Topic:
            name = topic.value
            consumed.add_metric([name], sum(s.consumed.get(name, 0) for s in self.stats))
            produced.add_metric([name], sum(s.produced.get(name, 0) for s in self.stats))
            dead.add_metric([name], sum(s.dead_lettered.get(name, 0) for s in self.stats))
            lag.add_metric([name], lag_now.get(name, 0))
        failures.add_metric([], sum(s.publish_failures for s in self.stats))
        yield from (consumed, produced, dead, lag, failures)
