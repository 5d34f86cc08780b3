"""The in-memory model of every charging point and open session, and the derived CP state.

Every lookup is a dict access: a heartbeat, a telemetry record or a request
touches one CP, never a scan over all of them.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from evproto.states import CpState, Health

from evcentral.records import CpRow, SessionRecord, SessionStatus

__all__ = ["ChargingPoint", "CpLink", "Registry", "derive_state"]


class CpLink(Protocol):
    """What the registry needs of a CP's authenticated monitor connection (monitor_link)."""

    cp_id: str

    def close_soon(self, reason: str) -> None: ...


def derive_state(
    *,
    connected: bool,
    health: Health | None,
    out_of_service: bool,
    session_status: SessionStatus | None,
) -> CpState:
    """The one rule for a CP's state, from what the central knows about it."""
    if not connected:
        return CpState.DISCONNECTED
    if health is not Health.OK:
        return CpState.BROKEN_DOWN
    if out_of_service:
        return CpState.STOPPED
    if session_status is SessionStatus.SUPPLYING:
        return CpState.SUPPLYING
    if session_status is SessionStatus.AUTHORIZED:
        return CpState.WAITING_FOR_SUPPLY
    return CpState.ACTIVE


@dataclass(slots=True, eq=False)
class ChargingPoint(CpRow):
    """A CP: what is stored (``CpRow``) and what only lives while the central runs."""

    link: CpLink | None = None
    health: Health | None = None
    session: SessionRecord | None = None
    state: CpState = CpState.DISCONNECTED
    state_since: float = 0.0  # Unix time the CP entered its state
    # what was last published on ev.cp.state; a change of it is published again
    published: tuple[object, ...] | None = None

    @classmethod
    def from_row(cls, row: CpRow) -> ChargingPoint:
        return cls(**{f.name: getattr(row, f.name) for f in dataclasses.fields(CpRow)})

    @property
    def connected(self) -> bool:
        return self.link is not None

    def derive(self) -> CpState:
        return derive_state(
            connected=self.connected,
            health=self.health,
            out_of_service=self.out_of_service,
            session_status=self.session.status if self.session else None,
        )

    def signature(self) -> tuple[object, ...]:
        """What drivers listing CPs see; published whenever it changes."""
        session = self.session
        return (
            self.state,
            session.driver_id if session else None,
            session.session_id if session else None,
            self.price,
            self.location,
        )


StateListener = Callable[[ChargingPoint, CpState | None], None]
TileListener = Callable[[ChargingPoint], None]


class Registry:
    """CPs by id, open sessions by id and by driver, the ACTIVE CPs in order.

    ``on_published_change(cp, old_state)`` runs when a CP's published view
    changes (state, driver, price…); ``on_tile_change(cp)`` whenever anything the
    dashboard shows may have changed (cheap: the dashboard coalesces).
    """

    def __init__(
        self,
        on_published_change: StateListener | None = None,
        on_tile_change: TileListener | None = None,
    ) -> None:
        self.cps: dict[str, ChargingPoint] = {}
        self.sessions: dict[str, SessionRecord] = {}
        self.driver_sessions: dict[str, SessionRecord] = {}
        self.counts: Counter[CpState] = Counter()
        self.connected = 0  # CPs with an authenticated monitor link
        self._available: dict[str, None] = {}  # insertion-ordered set of ACTIVE CP ids
        self._on_published = on_published_change or (lambda _cp, _old: None)
        self._on_tile = on_tile_change or (lambda _cp: None)

    def __len__(self) -> int:
        return len(self.cps)

    def __iter__(self) -> Iterator[ChargingPoint]:
        return iter(self.cps.values())

    def get(self, cp_id: str) -> ChargingPoint | None:
        return self.cps.get(cp_id)

    def add(self, cp: ChargingPoint) -> None:
        if cp.cp_id in self.cps:
            raise ValueError(f"{cp.cp_id} is already registered")
        self.cps[cp.cp_id] = cp
        cp.state = cp.derive()
        cp.state_since = time.time()
        self.counts[cp.state] += 1
        self._track_availability(cp)
        cp.published = cp.signature()
        self._on_published(cp, None)
        self._on_tile(cp)

    def refresh(self, cp: ChargingPoint) -> None:
        """Recompute the CP's state after a change and tell the listeners."""
        old = cp.state
        new = cp.derive()
        if new is not old:
            cp.state = new
            cp.state_since = time.time()
            self.counts[old] -= 1
            self.counts[new] += 1
            self._track_availability(cp)
        signature = cp.signature()
        if signature != cp.published:
            cp.published = signature
            self._on_published(cp, old)
        self._on_tile(cp)

    def tile_changed(self, cp: ChargingPoint) -> None:
        self._on_tile(cp)

    # --- links -------------------------------------------------------------------

    def attach_link(self, cp: ChargingPoint, link: CpLink, health: Health) -> None:
        """A newly authenticated link; the CP's previous one is closed."""
        old = cp.link
        if old is None:
            self.connected += 1
        cp.link = link
        cp.health = health
        if old is not None and old is not link:
            old.close_soon("replaced by a new connection for the same CP")
        self.refresh(cp)

    def detach_link(self, cp: ChargingPoint, link: CpLink) -> bool:
        """The link ended; True when it was the CP's current one (the CP is now DISCONNECTED)."""
        if cp.link is not link:
            return False
        cp.link = None
        self.connected -= 1
        self.refresh(cp)
        return True

    # --- sessions ------------------------------------------------------------------

    def attach_session(self, cp: ChargingPoint, session: SessionRecord) -> None:
        cp.session = session
        self.sessions[session.session_id] = session
        self.driver_sessions[session.driver_id] = session
        self.refresh(cp)

    def detach_session(self, session: SessionRecord) -> None:
        self.sessions.pop(session.session_id, None)
        if self.driver_sessions.get(session.driver_id) is session:
            del self.driver_sessions[session.driver_id]
        cp = self.cps.get(session.cp_id)
        if cp is not None and cp.session is session:
            cp.session = None
            self.refresh(cp)

    # --- the view authorization decides on ---------------------------------------------

    def state_of(self, cp_id: str) -> CpState | None:
        cp = self.cps.get(cp_id)
        return None if cp is None else cp.state

    def next_available(self) -> str | None:
        return next(iter(self._available), None)

    def session_cp_of(self, driver_id: str) -> str | None:
        session = self.driver_sessions.get(driver_id)
        return None if session is None else session.cp_id

    def _track_availability(self, cp: ChargingPoint) -> None:
        if cp.state is CpState.ACTIVE:
            self._available[cp.cp_id] = None
        else:
            self._available.pop(cp.cp_id, None)
