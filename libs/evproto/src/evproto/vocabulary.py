"""The words every component counts and logs with, defined once.

Metrics label values, error replies and the docs come from these enums and
constants; a service never re-lists them by hand.
"""

from __future__ import annotations

import enum

__all__ = [
    "DEFAULT_CONTROL_SOCKET",
    "MAX_PRICE_EUR_PER_KWH",
    "AbortCause",
    "Channel",
    "LinkErrorKind",
    "RequestOutcome",
    "manual_driver_id",
]

MAX_PRICE_EUR_PER_KWH = 100.0  # anything above is a typo, not a tariff
DEFAULT_CONTROL_SOCKET = "/tmp/evengine.sock"  # where `evengine ctl` finds its engine


def manual_driver_id(cp_id: str) -> str:
    """The driver id of a supply started at the charging point itself (M12)."""
    return f"manual@{cp_id}"


class LinkErrorKind(enum.StrEnum):
    """Why input from a peer was refused: the ``kind`` label of every
    ``…_protocol_errors_total`` counter (each pre-initialised at 0)."""

    # the link (evproto.connection)
    HANDSHAKE = "handshake"  # no ENQ/ACK opening
    HANDSHAKE_TIMEOUT = "handshake_timeout"  # opened, but not authenticated in time
    IDLE_TIMEOUT = "idle_timeout"  # nothing heard for longer than allowed
    STRAY_BYTES = "stray_bytes"  # bytes outside any frame
    UNEXPECTED_CONTROL = "unexpected_control"  # an ACK/NACK nothing waited for
    FRAME_TOO_LARGE = "frame_too_large"  # evproto.errors.FrameTooLarge.code
    BAD_LRC = "bad_lrc"  # evproto.errors.BadChecksum.code
    # the message inside a frame or record (evproto.errors.MessageError codes)
    BAD_MESSAGE = "bad_message"
    MALFORMED = "malformed"
    UNKNOWN_TYPE = "unknown_type"
    INVALID_FIELD = "invalid_field"
    UNPROVEN = "unproven"  # evproto.errors.ProofError.code: not proven by whom it names
    # the conversation
    NOT_AUTHENTICATED = "not_authenticated"  # a message before authentication
    AUTH_FAILED = "auth_failed"  # credentials refused
    UNEXPECTED_MESSAGE = "unexpected_message"  # a valid message at the wrong moment
    ERROR_REPLY = "error_reply"  # the peer refused one of ours
    WRONG_CP = "wrong_cp"  # a message about another CP
    CONTROL_REQUEST = "control_request"  # a bad `evengine ctl` request
    KAFKA_DEAD_LETTER = "kafka_dead_letter"  # a record moved to ev.deadletter
    # bounds (docs/reliability.md)
    ERROR_BUDGET = "error_budget"  # a link closed after too many of the errors above

    @classmethod
    def of(cls, code: str) -> LinkErrorKind:
        """The kind for an error ``code`` (evproto.errors); unknown codes count as bad_message."""
        try:
            return cls(code)
        except ValueError:
            return cls.BAD_MESSAGE


class AbortCause(enum.StrEnum):
    """Why a session ended before its driver or the vehicle ended it: the
    ``reason`` label of ``evcharging_central_sessions_aborted_total``."""

    FAULT = "fault"
    ENGINE_LOST = "engine_lost"
    OPERATOR_STOP = "operator_stop"
    START_TIMEOUT = "start_timeout"
    DRIVER_CANCEL = "driver_cancel"
    IMPLAUSIBLE = "implausible"  # the CP's ticket could not be true: billed to its last report


class Channel(enum.StrEnum):
    """A TCP direction ``receiver<-sender``; with the topics, the keys of
    ``evproto.messages.CHANNELS`` (which message types each accepts)."""

    CENTRAL_FROM_MONITOR = "central<-monitor"
    MONITOR_FROM_CENTRAL = "monitor<-central"
    ENGINE_FROM_MONITOR = "engine<-monitor"
    MONITOR_FROM_ENGINE = "monitor<-engine"
    DRIVER_SEALED = "driver<-sealed"  # inside a record sealed for one driver


class RequestOutcome(enum.StrEnum):
    """How a supply request ended for the one who asked: a ticket's outcome
    (``evproto.messages.Outcome``), or no session at all."""

    COMPLETED = "completed"
    ABORTED = "aborted"
    CANCELLED = "cancelled"
    DENIED = "denied"  # the central said no
    TIMEOUT = "timeout"  # the central did not answer in time
