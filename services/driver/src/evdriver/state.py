"""The driver's durable memory: its current or last session in ``<state-dir>/<id>.json``.

Written atomically (temporary file, fsync, rename) after every change, before the
change is shown and before its Kafka offset is committed, so a driver killed at
any moment finds on restart what it had shown, and Kafka replays the rest.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
from pathlib import Path
from typing import Any

from evproto.logs import kv
from evproto.messages import Ticket
from evproto.secret_file import write_atomically

__all__ = ["SavedSession", "SavedStatus", "StateStore"]

log = logging.getLogger("evdriver.state")
_MAX_STATE_BYTES = 64 * 1024


class SavedStatus(enum.StrEnum):
    REQUESTED = "requested"  # request published, no answer yet
    AUTHORIZED = "authorized"  # waiting for the vehicle to be plugged
    SUPPLYING = "supplying"
    ENDED = "ended"  # ticket received
    DENIED = "denied"
    NO_ANSWER = "no_answer"  # the central did not answer in time

    @property
    def running(self) -> bool:
        return self in _RUNNING


_RUNNING = {SavedStatus.REQUESTED, SavedStatus.AUTHORIZED, SavedStatus.SUPPLYING}


@dataclasses.dataclass(slots=True)
class SavedSession:
    """What the driver keeps in <state-dir>/<id>.json: its current or last request."""

    request_id: str
    cp_id: str | None  # None: "any" until the central picks one
    status: SavedStatus
    requested_at: float
    answer_timeout: float
    session_id: str | None = None
    price: float | None = None
    seq: int = 0
    kwh: float = 0.0
    eur: float = 0.0
    elapsed_s: float = 0.0
    reason: str = ""
    ticket: dict[str, Any] | None = None
    ticket_shown: bool = False

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["status"] = self.status.value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SavedSession:
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in fields}
        values["status"] = SavedStatus(values["status"])
        return cls(**values)

    @property
    def unfinished(self) -> bool:
        """Still running, or its ticket was saved but never shown."""
        return self.status.running or (self.status is SavedStatus.ENDED and not self.ticket_shown)

    def ticket_message(self) -> Ticket | None:
        return None if self.ticket is None else Ticket.from_dict(self.ticket)


class StateStore:
    """Load and save one driver's :class:`SavedSession`."""

    def __init__(self, state_dir: Path, driver_id: str) -> None:
        self.path = state_dir / f"{driver_id}.json"

    def load(self) -> SavedSession | None:
        """The saved record, or None; an unreadable file is reported and treated as absent."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(_MAX_STATE_BYTES + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("state file unreadable %s", kv(path=self.path, error=exc.strerror))
            return None
        try:
            if len(raw) > _MAX_STATE_BYTES:
                raise ValueError("file too large")
            return SavedSession.from_json(json.loads(raw))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("state file ignored %s", kv(path=self.path, error=exc))
            return None

    def save(self, record: SavedSession) -> None:
        data = json.dumps(record.to_json(), indent=1, sort_keys=True).encode()
        write_atomically(self.path, data)
