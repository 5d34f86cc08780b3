"""The gateway's Prometheus metrics (``evcharging_ocpp_…``), on a registry of its own."""

from __future__ import annotations

import enum

from evproto.metrics import ServiceMetrics
from prometheus_client import CollectorRegistry

__all__ = ["ErrorKind", "OcppMetrics", "Result", "Version"]


class Version(enum.StrEnum):
    """The OCPP-J versions the gateway speaks, named by their WebSocket subprotocol."""

    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"


class Result(enum.StrEnum):
    """How a message from a station ended."""

    OK = "ok"  # answered with a CallResult (or a result that was awaited)
    ERROR = "error"  # answered with a CallError


class ErrorKind(enum.StrEnum):
    """Why a station's input or connection was refused; one label value each."""

    FORMATION_VIOLATION = "formation_violation"  # not JSON, not an OCPP-J frame
    PROTOCOL_ERROR = "protocol_error"  # frame of the wrong shape
    NOT_IMPLEMENTED = "not_implemented"  # an action this gateway does not handle
    NOT_SUPPORTED = "not_supported"  # an action that is not in the station's version
    SCHEMA_VIOLATION = "schema_violation"  # the payload breaks the action's JSON schema
    NOT_ACCEPTED = "not_accepted"  # a call before the station's boot was accepted
    UNEXPECTED_RESULT = "unexpected_result"  # a result no call of ours waits for
    INTERNAL = "internal"  # the gateway failed to handle a valid call
    BINARY_FRAME = "binary_frame"  # OCPP-J is text frames only
    TOO_LARGE = "too_large"  # a frame above --max-message-bytes
    IDLE_TIMEOUT = "idle_timeout"  # nothing from the station for too long
    AUTH_FAILED = "auth_failed"  # bad or missing Basic credentials
    UNKNOWN_STATION = "unknown_station"  # enrollment closed and the station is unknown
    BAD_SUBPROTOCOL = "bad_subprotocol"  # neither ocpp1.6 nor ocpp2.0.1 offered
    CALL_TIMEOUT = "call_timeout"  # a station did not answer our call in time


class OcppMetrics(ServiceMetrics):
    """``evcharging_ocpp_…``; ``protocol_errors_total`` counts the central links' errors."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        super().__init__("ocpp", registry)
        self.stations_connected = self.gauge(
            "stations_connected",
            "Stations with an open WebSocket, by OCPP version",
            ["version"],
        )
        self.messages = self.counter(
            "messages_total",
            "Calls from stations, by action and result",
            ["action", "result"],
        )
        self.errors = self.counter(
            "errors_total",
            "Refused input and connections, by kind",
            ["kind"],
        )
        self.call_latency = self.histogram(
            "call_latency_seconds",
            "Round trip of the gateway's calls to stations, by action",
            (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
            ["action"],
        )
        self.central_links = self.gauge(
            "central_links",
            "Connectors authenticated at the central as charging points",
        )
        self.transactions = self.counter(
            "transactions_total",
            "Transactions ended by stations, by what the gateway did with them",
            ["result"],
        )
        for version in Version:
            self.stations_connected.labels(version=version.value)
        for kind in ErrorKind:
            self.errors.labels(kind=kind.value)
        for result in ("ticket", "duplicate", "unknown"):
            self.transactions.labels(result=result)

    def error(self, kind: ErrorKind) -> None:
        self.errors.labels(kind=kind.value).inc()
