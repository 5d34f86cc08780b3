"""The engine's Prometheus metrics, in a registry of its own (one per engine)."""

from __future__ import annotations

from evproto.messages import DirectiveAction, Outcome
from evproto.states import CpState, Health
from prometheus_client import CollectorRegistry, Counter, Gauge

from evengine.status import EngineStatus

__all__ = ["PROTOCOL_ERROR_KINDS", "EngineMetrics"]

# Pre-initialised label values; other kinds (error codes) appear when first seen.
PROTOCOL_ERROR_KINDS = (
    "handshake",
    "handshake_timeout",
    "bad_lrc",
    "stray_bytes",
    "frame_too_large",
    "malformed",
    "unknown_type",
    "invalid_field",
    "idle_timeout",
    "unexpected_control",
    "wrong_cp",
    "control_request",
    "kafka_dead_letter",
)


class EngineMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.supplying = Gauge(
            "evcharging_engine_supplying", "1 while energy flows to a vehicle", registry=r
        )
        self.power_kw = Gauge(
            "evcharging_engine_power_kw", "power delivered now in kW (0 when idle)", registry=r
        )
        self.session_energy_kwh = Gauge(
            "evcharging_engine_session_energy_kwh",
            "energy of the current session so far (last telemetry)",
            registry=r,
        )
        self.health_ko = Gauge(
            "evcharging_engine_health_ko", "1 while the engine answers KO (fault)", registry=r
        )
        self.sessions = Counter(
            "evcharging_engine_sessions_total",
            "tickets issued, by outcome",
            ["outcome"],
            registry=r,
        )
        self.telemetry_publish_failures = Counter(
            "evcharging_engine_telemetry_publish_failures_total",
            "telemetry records the broker did not take",
            registry=r,
        )
        self.directives = Counter(
            "evcharging_engine_directives_total",
            "directives applied, by action (duplicates not counted)",
            ["action"],
            registry=r,
        )
        self.protocol_errors = Counter(
            "evcharging_engine_protocol_errors_total",
            "bad input from the monitor link, the control socket or Kafka, by kind",
            ["kind"],
            registry=r,
        )
        for outcome in Outcome:
            self.sessions.labels(outcome.value)
        for action in DirectiveAction:
            self.directives.labels(action.value)
        for kind in PROTOCOL_ERROR_KINDS:
            self.protocol_errors.labels(kind)

    def show(self, status: EngineStatus) -> None:
        """Set the gauges from the engine's status."""
        self.supplying.set(1 if status.state is CpState.SUPPLYING else 0)
        self.power_kw.set(status.power_kw)
        self.session_energy_kwh.set(status.kwh)
        self.health_ko.set(1 if status.health is Health.KO else 0)

    # LinkObserver (evproto.connection): counts the monitor link's errors
    def frame_in(self) -> None:
        pass

    def frame_out(self) -> None:
        pass

    def protocol_error(self, kind: str) -> None:
        self.protocol_errors.labels(kind).inc()
