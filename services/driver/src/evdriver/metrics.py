"""The driver's Prometheus metrics (served with ``--metrics`` by long-running commands)."""

from __future__ import annotations

from evproto.metrics import ServiceMetrics
from evproto.vocabulary import RequestOutcome
from prometheus_client import CollectorRegistry

__all__ = ["DriverMetrics"]

BAD_INPUT_SOURCES = ("batch_line", "menu", "cp_state")


class DriverMetrics(ServiceMetrics):
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("driver", registry)
        self.requests = self.counter("requests_total", "Supply requests this driver sent")
        self.outcomes = self.counter(
            "outcomes_total", "How this driver's requests ended", ["outcome"]
        )
        self.bad_input = self.counter(
            "bad_input_total",
            "Input refused: batch lines or menu entries that are not CP ids, bad CP records",
            ["source"],
        )
        for outcome in RequestOutcome:
            self.outcomes.labels(outcome=outcome)
        for source in BAD_INPUT_SOURCES:
            self.bad_input.labels(source=source)

    def count_outcome(self, outcome: str) -> None:
        """``outcome`` as in a SessionResult; interruptions are not an outcome."""
        label = RequestOutcome.TIMEOUT if outcome == "no_answer" else outcome
        if label in set(RequestOutcome):
            self.outcomes.labels(outcome=label).inc()
