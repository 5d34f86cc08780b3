"""The central's Prometheus metrics (``evcharging_central_…``), label values pre-initialised.

Each :class:`CentralMetrics` has a registry of its own (evproto.metrics), one per
central: the one ``/metrics`` serves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from evproto.errors import ImplausibleRecord, ProofError
from evproto.kafka import KafkaStats
from evproto.messages import Origin
from evproto.metrics import LOOP_LAG_BUCKETS, ServiceMetrics
from evproto.schema import MsgType
from evproto.states import CpState
from evproto.topics import Topic
from evproto.vocabulary import AbortCause
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from evcentral.authorization import AUTHORIZED_CODE, DenyCode
from evcentral.refusals import REFUSALS, Door, Refusal

__all__ = ["CAP_REASONS", "CP_STATE_VALUES", "CentralMetrics", "CpStateCollector"]

# Kafka messages the central accepts only with a proof (evcentral.record_proofs)
PROVEN_TYPES = (
    MsgType.SUPPLY_REQUEST,
    MsgType.SUPPLY_STOP,
    MsgType.ENROLL_REQUEST,
    MsgType.SUPPLY_STARTED,
    MsgType.TELEMETRY,
    MsgType.TICKET,
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
REFUSED_KINDS = [
    *((t, ProofError.code) for t in PROVEN_TYPES),
    *((t, ImplausibleRecord.code) for t in (MsgType.TELEMETRY, MsgType.TICKET)),
]
CP_STATE_VALUES = {
    CpState.ACTIVE: 0,
    CpState.SUPPLYING: 1,
    CpState.WAITING_FOR_SUPPLY: 2,
    CpState.STOPPED: 3,
    CpState.BROKEN_DOWN: 4,
    CpState.DISCONNECTED: 5,
}
_HTTP_METHODS = ("GET", "POST", "PUT", "DELETE")
_HTTP_STATUSES = ("200", "201", "202", "400", "401", "403", "404", "405", "409", "500", "503")


class CentralMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(
            "central", registry, errors_help="Bad input on the monitor port", count_frames=True
        )
        self.sessions_started = self.counter(
            "sessions_started_total", "Sessions authorized", ["origin"]
        )
        self.sessions_completed = self.counter(
            "sessions_completed_total", "Sessions ended with a completed ticket"
        )
        self.sessions_aborted = self.counter(
            "sessions_aborted_total", "Sessions aborted or cancelled, by cause", ["reason"]
        )
        self.session_duration = self.histogram(
            "session_duration_seconds",
            "Supply duration of ended sessions",
            buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400),
        )
        self.session_energy = self.histogram(
            "session_energy_kwh",
            "Energy delivered per ended session",
            buckets=(0.01, 0.1, 0.5, 1, 2, 5, 10, 20, 50, 100),
        )
        self.energy_delivered = self.counter(
            "energy_delivered_kwh_total", "Energy billed on tickets"
        )
        self.revenue = self.counter("revenue_eur_total", "Amount billed on tickets")
        self.authorization_latency = self.histogram(
            "authorization_latency_seconds",
            "From a request's sent_at to its decision",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.event_loop_lag = self.histogram(
            "event_loop_lag_seconds",
            "How late the event loop ran a 250 ms timer (saturation or a blocking call)",
            buckets=LOOP_LAG_BUCKETS,
        )
        self.authorizations = self.counter(
            "authorizations_total", "Supply requests decided", ["result", "reason"]
        )
        self.cps = self.gauge("cps", "Charging points per state", ["state"])
        # each CP's state and since when: read from the registry at scrape time
        self.cp_states = CpStateCollector(self.prefix)
        self.registry.register(self.cp_states)
        self.connected_monitors = self.gauge(
            "connected_monitors", "Authenticated monitor connections"
        )
        self.ignored_messages = self.counter(
            "ignored_messages_total",
            "Kafka messages ignored: duplicates, or late for an ended session",
            ["kind"],
        )
        self.refused_records = self.counter(
            "refused_records_total",
            "Kafka records refused and dead-lettered: not proven by whom they name "
            "(unproven), or reporting what cannot be true (implausible)",
            ["type", "code"],
        )
        self.driver_enrollments = self.counter(
            "driver_enrollments_total",
            "Driver enrollments, by how and whether they were accepted",
            ["via", "result"],
        )
        self.pending_monitors = self.gauge(
            "pending_monitor_connections", "Monitor connections not yet authenticated"
        )
        self.event_clients = self.gauge("event_clients", "Open /api/events streams")
        self.capped = self.counter(
            "connections_capped_total",
            "Connections refused or dropped by a cap (docs/reliability.md)",
            ["reason"],
        )
        self.database_size = self.gauge(
            "database_size_bytes", "The SQLite database and its WAL on disk"
        )
        self.outbox_records = self.gauge(
            "outbox_records",
            "Records kept in the database's outbox (tickets and their END_SUPPLY) that the "
            "broker has not confirmed yet",
        )
        self.access_refused = self.counter(
            "access_refused_total",
            "Callers turned away: HTTP without a valid token or above their role, "
            "CP registrations of a known CP, too fast or with a wrong token",
            ["door", "reason"],
        )
        self.ready = self.gauge("ready", "1 when /readyz answers 200")
        self.http_requests = self.counter(
            "http_requests_total", "HTTP requests served", ["method", "status"]
        )
        self.kafka = KafkaCollector(self.prefix)
        self.registry.register(self.kafka)
        self._preinitialise()

    def _preinitialise(self) -> None:
        for origin in Origin:
            self.sessions_started.labels(origin.value)
        for cause in AbortCause:
            self.sessions_aborted.labels(cause)
        self.authorizations.labels("authorized", AUTHORIZED_CODE)
        for code in DenyCode:
            self.authorizations.labels("denied", code.value)
        for state in CpState:
            self.cps.labels(state.value)
        for kind in IGNORED_KINDS:
            self.ignored_messages.labels(kind)
        for reason in CAP_REASONS:
            self.capped.labels(reason)
        for door, reasons in REFUSALS.items():
            for reason in reasons:
                self.access_refused.labels(door.value, reason.value)
        for msg_type, refusal in REFUSED_KINDS:
            self.refused_records.labels(msg_type.value, refusal)
        for via in ("operator", "self"):
            for result in ("accepted", "refused"):
                self.driver_enrollments.labels(via, result)
        for method in _HTTP_METHODS:
            for status in _HTTP_STATUSES:
                self.http_requests.labels(method, status)

    def refused(self, door: Door, reason: Refusal) -> None:
        self.access_refused.labels(door.value, reason.value).inc()

    def set_cp_state(self, old: CpState | None, new: CpState) -> None:
        if old is not None:
            self.cps.labels(old.value).dec()
        self.cps.labels(new.value).inc()


class CpStateView(Protocol):
    """What :class:`CpStateCollector` reads of a CP (evcentral.registry.ChargingPoint)."""

    @property
    def cp_id(self) -> str: ...
    @property
    def state(self) -> CpState: ...
    @property
    def state_since(self) -> float: ...


class CpStateCollector(Collector):
    """``cp_state`` and ``cp_state_since_timestamp_seconds`` for every CP, read from the
    registry at scrape time: no Prometheus label child per CP, which cost ~0.7 KB per CP
    and gauge held for the central's life (docs/decisions.md, "Memory per CP")."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.cps: Callable[[], Iterable[CpStateView]] = tuple

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            f"{self._prefix}_cp_state",
            "State of each CP: 0 ACTIVE, 1 SUPPLYING, 2 WAITING_FOR_SUPPLY, 3 STOPPED, "
            "4 BROKEN_DOWN, 5 DISCONNECTED",
            labels=["cp_id"],
        )
        since = GaugeMetricFamily(
            f"{self._prefix}_cp_state_since_timestamp_seconds",
            "When each CP entered its current state (Unix time): how long it is broken",
            labels=["cp_id"],
        )
        # a scrape runs on the metrics thread: list() copies the CPs in one step
        for cp in list(self.cps()):
            state.add_metric([cp.cp_id], CP_STATE_VALUES[cp.state])
            since.add_metric([cp.cp_id], cp.state_since)
        yield state
        yield since


class KafkaCollector(Collector):
    """Kafka counters read from the evproto clients' :class:`KafkaStats` at scrape time."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self.stats: list[KafkaStats] = []
        self.lag: Callable[[], dict[str, int]] = dict

    def collect(self) -> Iterator[Metric]:
        consumed = CounterMetricFamily(
            f"{self._prefix}_kafka_messages_consumed", "Kafka records consumed", labels=["topic"]
        )
        produced = CounterMetricFamily(
            f"{self._prefix}_kafka_messages_produced", "Kafka records delivered", labels=["topic"]
        )
        dead = CounterMetricFamily(
            f"{self._prefix}_kafka_dead_letters",
            "Poison records moved to ev.deadletter",
            labels=["topic"],
        )
        lag = GaugeMetricFamily(
            f"{self._prefix}_kafka_consumer_lag_messages",
            "Records behind the high watermark",
            labels=["topic"],
        )
        failures = CounterMetricFamily(
            f"{self._prefix}_kafka_publish_failures", "Records the broker did not take"
        )
        lag_now = self.lag()
        for topic in Topic:
            name = topic.value
            consumed.add_metric([name], sum(s.consumed.get(name, 0) for s in self.stats))
            produced.add_metric([name], sum(s.produced.get(name, 0) for s in self.stats))
            dead.add_metric([name], sum(s.dead_lettered.get(name, 0) for s in self.stats))
            lag.add_metric([name], lag_now.get(name, 0))
        retries = CounterMetricFamily(
            f"{self._prefix}_kafka_publish_retries",
            "Deliveries that failed for a reason that passes (a long outage) and were "
            "produced again",
        )
        failures.add_metric([], sum(s.publish_failures for s in self.stats))
        retries.add_metric([], sum(s.publish_retries for s in self.stats))
        yield from (consumed, produced, dead, lag, failures, retries)
