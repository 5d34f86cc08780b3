"""The operator's event log: one log line per event, and a feed for the dashboard."""

from __future__ import annotations

import enum
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from evproto.logs import kv

from evcentral.records import SessionRecord

__all__ = ["Journal", "LogEntry", "LogKind"]

log = logging.getLogger("evcentral.events")


class LogKind(enum.StrEnum):
    REQUEST = "request"
    AUTHORIZED = "authorized"
    DENIED = "denied"
    STARTED = "started"
    TICKET = "ticket"
    FAULT = "fault"
    DIRECTIVE = "directive"
    CONNECTION = "connection"
    SECURITY = "security"  # a refused token, registration or proof (evcentral.refusals)
    REFUSED = "refused"  # a Kafka record not proven, or implausible
    ENROLLMENT = "enrollment"


@dataclass(frozen=True, slots=True)
class LogEntry:
    ts: float
    kind: LogKind
    message: str
    cp_id: str | None = None
    driver_id: str | None = None
    session_id: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "ts": self.ts,
            "kind": self.kind.value,
            "message": self.message,
            "cp_id": self.cp_id,
            "driver_id": self.driver_id,
            "session_id": self.session_id,
        }


class Journal:
    """Keeps the latest entries (for a dashboard that connects later) and tells subscribers."""

    def __init__(self, keep: int = 200) -> None:
        self.recent: deque[LogEntry] = deque(maxlen=keep)
        self._subscribers: list[Callable[[LogEntry], None]] = []

    def subscribe(self, callback: Callable[[LogEntry], None]) -> None:
        self._subscribers.append(callback)

    def record(
        self,
        kind: LogKind,
        message: str,
        *,
        cp_id: str | None = None,
        driver_id: str | None = None,
        session_id: str | None = None,
        level: int = logging.INFO,
    ) -> LogEntry:
        entry = LogEntry(time.time(), kind, message, cp_id, driver_id, session_id)
        log.log(
            level,
            "%s %s",
            message,
            kv(kind=kind.value, cp=cp_id, driver=driver_id, session=session_id),
        )
        self.recent.append(entry)
        for callback in self._subscribers:
            callback(entry)
        return entry

    def about(
        self, session: SessionRecord, kind: LogKind, message: str, level: int = logging.INFO
    ) -> LogEntry:
        """An event of one session, with its CP, driver and session ids."""
        return self.record(
            kind,
            message,
            cp_id=session.cp_id,
            driver_id=session.driver_id,
            session_id=session.session_id,
            level=level,
        )
