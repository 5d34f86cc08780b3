"""What the supply state machine produces besides messages: events for people,
and the :class:`Step` every input returns."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from evproto.schema import Message

__all__ = ["MANUAL_OUTCOMES", "Event", "EventKind", "Reason", "Step"]


class Reason(enum.StrEnum):
    """Why a supply ended, as the ticket says it."""

    UNPLUGGED = "vehicle unplugged"
    DRIVER_STOP = "stopped by the driver"
    FAULT = "charging point fault"
    OPERATOR_STOP = "stopped by the operator"
    SHUT_DOWN = "charging point shut down"
    OUT_OF_ORDER = "charging point out of order"
    BUSY = "charging point busy with another supply"


class EventKind(enum.StrEnum):
    AUTHORIZED = "authorized"  # a start directive was accepted
    REFUSED = "refused"  # a start directive was refused (cancelled ticket)
    DROPPED = "dropped"  # a pending start ended before the plug, no ticket
    STARTED = "started"
    TICKET = "ticket"
    STATE = "state"  # out of order / back in service
    HEALTH = "health"
    PRICE = "price"
    CENTRAL = "central"  # reachable or not, as the monitor says
    IGNORED = "ignored"  # a duplicate or stale directive or answer
    MANUAL_REQUESTED = "manual_requested"
    MANUAL_ANSWERED = "manual_answered"  # authorized; its start directive is awaited
    MANUAL_DENIED = "manual_denied"
    MANUAL_AUTHORIZED = "manual_authorized"  # its start directive arrived
    MANUAL_GAVE_UP = "manual_gave_up"


MANUAL_OUTCOMES = frozenset(
    {EventKind.MANUAL_DENIED, EventKind.MANUAL_AUTHORIZED, EventKind.MANUAL_GAVE_UP}
)


@dataclass(frozen=True, slots=True)
class Event:
    """Something a person at the CP (or reading its log) should know."""

    kind: EventKind
    text: str
    session_id: str | None = None
    driver_id: str | None = None
    warning: bool = False


@dataclass(slots=True)
class Step:
    """What one input produced: messages to publish (in order) and events."""

    outputs: list[Message | Event] = field(default_factory=list)
    ok: bool = True  # for a command: was it done
    answer: str = ""  # for a command: what the person is told

    @property
    def messages(self) -> list[Message]:
        return [o for o in self.outputs if isinstance(o, Message)]

    @property
    def events(self) -> list[Event]:
        return [o for o in self.outputs if isinstance(o, Event)]
