"""What the driver shows: typed events, shared by the text and JSON renderers and tests.

The session logic (:mod:`evdriver.watcher`) and the commands produce these; the
renderers (:mod:`evdriver.render`) turn them into text or one JSON object each.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import Any, ClassVar

from evproto.messages import Ticket
from evproto.states import CpState

__all__ = [
    "Authorized",
    "BadLine",
    "BrokerUnreachable",
    "CpListed",
    "Denied",
    "ErrorCode",
    "Event",
    "EventKind",
    "InputRefused",
    "Interrupted",
    "NoAnswer",
    "NoSession",
    "Problem",
    "Progress",
    "Requested",
    "Resumed",
    "SessionError",
    "Started",
    "Stopping",
    "Summary",
    "SummaryRow",
    "TicketReceived",
    "Waiting",
]


class EventKind(enum.StrEnum):
    REQUESTED = "requested"
    AUTHORIZED = "authorized"
    DENIED = "denied"
    STARTED = "started"
    PROGRESS = "progress"
    ERROR = "error"
    TICKET = "ticket"
    RESUMED = "resumed"
    STOPPING = "stopping"
    WAITING = "waiting"
    INTERRUPTED = "interrupted"
    NO_SESSION = "no_session"
    CP = "cp"
    SUMMARY = "summary"


class ErrorCode(enum.StrEnum):
    """The ``code`` of an ``error`` event."""

    SESSION = "session_error"  # the central reports a problem with the running supply
    NO_ANSWER = "no_answer"  # the central did not answer in time
    BROKER = "broker_unreachable"
    BAD_LINE = "bad_line"  # a batch file line that is not a CP id
    BAD_INPUT = "bad_input"  # a menu entry that is not a CP id


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    kind: ClassVar[EventKind]
    ts: float = dataclasses.field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event": self.kind.value}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.value if isinstance(value, enum.Enum) else value
        return out


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Requested(Event):
    kind = EventKind.REQUESTED
    driver_id: str
    request_id: str
    cp_id: str | None  # None: the next available CP


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Authorized(Event):
    kind = EventKind.AUTHORIZED
    request_id: str
    session_id: str
    cp_id: str
    price: float | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Denied(Event):
    kind = EventKind.DENIED
    request_id: str
    cp_id: str | None
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Started(Event):
    kind = EventKind.STARTED
    session_id: str
    cp_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Progress(Event):
    kind = EventKind.PROGRESS
    session_id: str
    cp_id: str
    seq: int
    kwh: float
    eur: float
    elapsed_s: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SessionError(Event):
    kind = EventKind.ERROR
    code: ErrorCode = ErrorCode.SESSION
    session_id: str
    cp_id: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Problem(Event):
    """An ``error`` event whose JSON also carries the sentence shown to people."""

    kind = EventKind.ERROR

    @property
    def message(self) -> str:
        raise NotImplementedError

    def to_json(self) -> dict[str, Any]:
        return {**Event.to_json(self), "message": self.message}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NoAnswer(Problem):
    code: ErrorCode = ErrorCode.NO_ANSWER
    request_id: str
    cp_id: str | None
    timeout_s: float

    @property
    def message(self) -> str:
        return f"the central did not answer within {self.timeout_s:g} s; " + (
            "it may be down — try again later"
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BrokerUnreachable(Problem):
    code: ErrorCode = ErrorCode.BROKER
    bootstrap: str
    detail: str

    @property
    def message(self) -> str:
        return f"cannot reach the Kafka broker at {self.bootstrap} ({self.detail}); " + (
            "check --kafka and that the broker is up, then try again"
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BadLine(Event):
    kind = EventKind.ERROR
    code: ErrorCode = ErrorCode.BAD_LINE
    line: int
    text: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class InputRefused(Event):
    """A menu entry that is not a command or a CP id."""

    kind = EventKind.ERROR
    code: ErrorCode = ErrorCode.BAD_INPUT
    text: str
    reason: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TicketReceived(Event):
    kind = EventKind.TICKET
    ticket: Ticket

    @property
    def duration_s(self) -> float:
        return max(0.0, self.ticket.ended_at - self.ticket.started_at)

    def to_json(self) -> dict[str, Any]:
        fields = self.ticket.to_dict()
        del fields["type"], fields["v"]
        return {"event": self.kind.value, "ts": self.ts, **fields, "duration_s": self.duration_s}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Resumed(Event):
    """A restarted driver found an unfinished session in its state file."""

    kind = EventKind.RESUMED
    request_id: str
    session_id: str | None
    cp_id: str | None
    status: str
    kwh: float
    eur: float
    elapsed_s: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Stopping(Event):
    kind = EventKind.STOPPING
    session_id: str | None
    cp_id: str | None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Waiting(Event):
    """No news for a while: the supply is still open, the driver keeps waiting."""

    kind = EventKind.WAITING
    session_id: str | None
    cp_id: str | None
    silent_s: float


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Interrupted(Event):
    kind = EventKind.INTERRUPTED
    driver_id: str
    session_id: str | None

    @property
    def resume_hint(self) -> str:
        return f"evdriver --id {self.driver_id} watch"

    def to_json(self) -> dict[str, Any]:
        return {**Event.to_json(self), "resume": self.resume_hint}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class NoSession(Event):
    kind = EventKind.NO_SESSION
    driver_id: str


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CpListed(Event):
    kind = EventKind.CP
    cp_id: str
    location: str
    price: float | None
    state: CpState

    @property
    def available(self) -> bool:
        return self.state.available

    def to_json(self) -> dict[str, Any]:
        return {
            **Event.to_json(self),
            "label": self.state.label,
            "available": self.available,
        }


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SummaryRow:
    line: int
    cp_id: str
    outcome: str  # an Outcome value, "denied", "no_answer", "bad_line", "broker_unreachable"
    exit_code: int
    kwh: float = 0.0
    eur: float = 0.0
    reason: str = ""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Summary(Event):
    kind = EventKind.SUMMARY
    rows: tuple[SummaryRow, ...]
    exit_code: int

    def to_json(self) -> dict[str, Any]:
        return {
            "event": self.kind.value,
            "ts": self.ts,
            "exit_code": self.exit_code,
            "rows": [dataclasses.asdict(r) for r in self.rows],
        }
