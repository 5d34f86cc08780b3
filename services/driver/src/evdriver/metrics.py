"""The driver's Prometheus metrics (served with ``--metrics`` by long-running commands)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

__all__ = ["OUTCOMES", "DriverMetrics"]

# completed/aborted/cancelled come from tickets; denied and timeout from the central's answer.
OUTCOMES = ("completed", "aborted", "cancelled", "denied", "timeout")
BAD_INPUT_SOURCES = ("batch_line", "menu", "cp_state")


class DriverMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Counter(
            "evcharging_driver_requests_total",
            "Supply requests this driver sent",
            registry=self.registry,
        )
        self.outcomes = Counter(
            "evcharging_driver_outcomes_total",
            "How this driver's requests ended",
            ["outcome"],
            registry=self.registry,
        )
        self.bad_input = Counter(
            "evcharging_driver_bad_input_total",
            "Input refused: batch lines or menu entries that are not CP ids, bad CP records",
            ["source"],
            registry=self.registry,
        )
        for outcome in OUTCOMES:
            self.outcomes.labels(outcome=outcome)
        for source in BAD_INPUT_SOURCES:
            self.bad_input.labels(source=source)

    def count_outcome(self, outcome: str) -> None:
        """``outcome`` as in a SessionResult; interruptions are not an outcome."""
        label = "timeout" if outcome == "no_answer" else outcome
        if label in OUTCOMES:
            self.outcomes.labels(outcome=label).inc()
