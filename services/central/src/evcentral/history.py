"""Each CP's recent state changes, for the dashboard's detail view.

Kept in memory only (a bounded list per CP): it answers "what happened to this
CP lately", not an audit trail; a restarted central starts it again. A list, not a
``deque(maxlen=…)``: a deque allocates a 64-slot block at once (~0.8 KB for each of
10,000 CPs that mostly changed state twice), a list grows with what it holds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from evproto.states import CpState, Health

__all__ = ["StateChange", "StateHistory"]

_KEEP_PER_CP = 50


@dataclass(frozen=True, slots=True)
class StateChange:
    ts: float
    state: CpState
    health: Health | None

    def to_json(self) -> dict[str, object]:
        return {
            "ts": self.ts,
            "state": self.state.value,
            "label": self.state.label,
            "colour": self.state.colour,
            "health": self.health.value if self.health else None,
        }


class StateHistory:
    def __init__(self, keep: int = _KEEP_PER_CP) -> None:
        self._keep = keep
        self._changes: dict[str, list[StateChange]] = {}

    def record(self, cp_id: str, state: CpState, health: Health | None) -> None:
        changes = self._changes.get(cp_id)
        if changes is None:
            changes = self._changes[cp_id] = []
        elif changes[-1].state is state:
            return
        changes.append(StateChange(time.time(), state, health))
        if len(changes) > self._keep:
            del changes[0]

    def of(self, cp_id: str) -> list[StateChange]:
        """Newest first."""
        return list(reversed(self._changes.get(cp_id, ())))
