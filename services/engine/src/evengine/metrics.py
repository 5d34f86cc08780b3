"""The engine's Prometheus metrics (``evcharging_engine_…``) on the evproto.metrics base."""

from __future__ import annotations

from evproto.messages import DirectiveAction, Outcome
from evproto.metrics import ServiceMetrics
from evproto.states import CpState, Health
from prometheus_client import CollectorRegistry

from evengine.status import EngineStatus

__all__ = ["EngineMetrics"]


class EngineMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__(
            "engine",
            registry,
            errors_help="bad input from the monitor link, the control socket or Kafka, by kind",
        )
        self.supplying = self.gauge("supplying", "1 while energy flows to a vehicle")
        self.power_kw = self.gauge("power_kw", "power delivered now in kW (0 when idle)")
        self.session_energy_kwh = self.gauge(
            "session_energy_kwh", "energy of the current session so far (last telemetry)"
        )
        self.health_ko = self.gauge("health_ko", "1 while the engine answers KO (fault)")
        self.sessions = self.counter("sessions_total", "tickets issued, by outcome", ["outcome"])
        self.telemetry_publish_failures = self.counter(
            "telemetry_publish_failures_total", "telemetry records the broker did not take"
        )
        self.directives = self.counter(
            "directives_total", "directives applied, by action (duplicates not counted)", ["action"]
        )
        for outcome in Outcome:
            self.sessions.labels(outcome.value)
        for action in DirectiveAction:
            self.directives.labels(action.value)

    def show(self, status: EngineStatus) -> None:
        """Set the gauges from the engine's status."""
        self.supplying.set(1 if status.state is CpState.SUPPLYING else 0)
        self.power_kw.set(status.power_kw)
        self.session_energy_kwh.set(status.kwh)
        self.health_ko.set(1 if status.health is Health.KO else 0)
