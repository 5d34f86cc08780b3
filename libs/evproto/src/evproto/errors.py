"""The one error hierarchy of the EV Charging Network.

    EvError                       every error we raise on purpose
    ├── ConfigError               bad flag, env var or YAML file (permanent)
    ├── ProtocolError             a peer sent something we cannot accept
    │   ├── FramingError          bytes that are not a valid frame
    │   │   ├── FrameTooLarge     frame over the maximum size (closes the link)
    │   │   └── BadChecksum       LRC mismatch (answered with NACK)
    │   └── MessageError          a frame or Kafka record that is not a valid message
    │       ├── MalformedMessage  not a UTF-8 JSON object
    │       ├── UnknownMessageType
    │       ├── InvalidField      a field is missing, of the wrong type or out of range
    │       ├── ProofError        a record not proven by whom it claims (no, bad, stale proof)
    │       └── ImplausibleRecord a proven report that cannot be true (billing checks)
    ├── LinkError                 the TCP link failed (temporary: retry)
    │   ├── LinkTimeout           a peer did not answer in time
    │   ├── LinkClosed            the peer closed (EOT or EOF)
    │   └── SendFailed            a frame was NACKed more times than allowed
    ├── BrokerError               Kafka did not answer or refused a request (temporary: retry)
    └── AuthError                 credentials rejected (permanent)

Each error has a stable ``code`` (used in error frames, metrics labels and logs)
and a default message a person can act on.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "AuthError",
    "BadChecksum",
    "BrokerError",
    "ConfigError",
    "EvError",
    "FrameTooLarge",
    "FramingError",
    "ImplausibleRecord",
    "InvalidField",
    "LinkClosed",
    "LinkError",
    "LinkTimeout",
    "MalformedMessage",
    "MessageError",
    "ProofError",
    "ProtocolError",
    "SendFailed",
    "UnknownMessageType",
]


class EvError(Exception):
    code = "error"
    default_message = "unexpected error"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.default_message
        super().__init__(self.message)


class ConfigError(EvError):
    code = "config"
    default_message = "invalid configuration; see --help"


class ProtocolError(EvError):
    code = "protocol"
    default_message = "the peer broke the protocol"


class FramingError(ProtocolError):
    code = "framing"
    default_message = "bytes are not a valid <STX><DATA><ETX><LRC> frame"


class FrameTooLarge(FramingError):
    code = "frame_too_large"
    default_message = "frame exceeds the maximum size; the connection is closed"

    def __init__(self, message: str | None = None, *, decoded: Sequence[object] = ()) -> None:
        # What the decoder completed, in the same chunk, before the oversized frame:
        # the caller still acts on those, so decoding does not depend on chunking.
        self.decoded = tuple(decoded)
        super().__init__(message)


class BadChecksum(FramingError):
    code = "bad_lrc"
    default_message = "frame LRC does not match its data; resend it"


class MessageError(ProtocolError):
    code = "bad_message"
    default_message = "not a valid message"


class MalformedMessage(MessageError):
    code = "malformed"
    default_message = "message is not a UTF-8 JSON object"


class UnknownMessageType(MessageError):
    code = "unknown_type"
    default_message = "message type is not known"


class InvalidField(MessageError):
    code = "invalid_field"

    def __init__(self, message_type: str, field: str, problem: str) -> None:
        self.message_type = message_type
        self.field = field
        self.problem = problem
        super().__init__(f"{message_type}.{field}: {problem}")


class ProofError(MessageError):
    code = "unproven"
    default_message = "the record is not proven by whom it claims to come from"


class ImplausibleRecord(MessageError):
    code = "implausible"
    default_message = "the record reports what cannot have happened"


class LinkError(EvError):
    code = "link"
    default_message = "the connection to the peer failed"


class LinkTimeout(LinkError):
    code = "timeout"
    default_message = "the peer did not answer in time"


class LinkClosed(LinkError):
    code = "closed"
    default_message = "the peer closed the connection"


class SendFailed(LinkError):
    code = "send_failed"
    default_message = "the peer rejected the frame too many times"


class BrokerError(EvError):
    """What evproto's Kafka clients raise instead of the client library's errors."""

    code = "broker"
    default_message = "the Kafka broker did not answer"


class AuthError(EvError):
    code = "auth"
    default_message = "credentials rejected"
