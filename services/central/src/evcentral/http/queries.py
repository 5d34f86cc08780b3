"""Query strings of the read API, checked once where they enter: bad ones get a 400
that says what is wrong and what would be right."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from aiohttp import web
from evproto.messages import Outcome
from evproto.schema import is_ident
from evproto.states import CpState

from evcentral.db import OPEN_SESSIONS, SessionFilter

__all__ = ["CpQuery", "SessionQuery", "bad_request", "cp_query", "session_query", "since_query"]

_MAX_TEXT = 200  # longer ids and searches match nothing anyway
_DEFAULT_LIMIT, _MAX_LIMIT = 100, 1000
_MAX_OFFSET = 10_000_000
OUTCOMES = (*(o.value for o in Outcome), OPEN_SESSIONS)


def bad_request(message: str) -> NoReturn:
    raise web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


def _text(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name, "").strip()
    if len(value) > _MAX_TEXT:
        bad_request(f"{name} is longer than {_MAX_TEXT} characters")
    return value or None


def _ident(query: Mapping[str, str], name: str) -> str | None:
    value = query.get(name) or None
    if value is not None and not is_ident(value):
        bad_request(f"{name} is not a valid id (1-64 letters, digits or ._:@-)")
    return value


def _whole(query: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name, "") or str(default)
    try:
        value = int(text)
    except ValueError:
        bad_request(f"{name} must be a whole number, got {text[:40]!r}")
    if not low <= value <= high:
        bad_request(f"{name} must be between {low} and {high}")
    return value


def _epoch(query: Mapping[str, str], name: str) -> float | None:
    text = query.get(name, "")
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        bad_request(f"{name} must be a time in seconds since 1970 (UTC), got {text[:40]!r}")
    if not math.isfinite(value) or value < 0:
        bad_request(f"{name} must be a time in seconds since 1970 (UTC), got {text[:40]!r}")
    return value


@dataclass(frozen=True, slots=True)
class SessionQuery:
    where: SessionFilter
    limit: int
    offset: int


def session_query(
    query: Mapping[str, str], *, default_limit: int = _DEFAULT_LIMIT, max_limit: int = _MAX_LIMIT
) -> SessionQuery:
    outcome = _text(query, "outcome")
    if outcome is not None and outcome not in OUTCOMES:
        bad_request(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    where = SessionFilter(
        cp_id=_ident(query, "cp_id"),
        driver_id=_ident(query, "driver_id"),
        outcome=outcome,
        since=_epoch(query, "since"),
        until=_epoch(query, "until"),
    )
    return SessionQuery(
        where=where,
        limit=_whole(query, "limit", default_limit, 1, max_limit),
        offset=_whole(query, "offset", 0, 0, _MAX_OFFSET),
    )


def since_query(query: Mapping[str, str], default: float) -> float:
    found = _epoch(query, "since")
    return default if found is None else found


@dataclass(frozen=True, slots=True)
class CpQuery:
    states: frozenset[CpState]  # empty: every state
    search: str | None  # lower-cased; matched in the id and the location

    def matches(self, cp_id: str, location: str, state: CpState) -> bool:
        if self.states and state not in self.states:
            return False
        if self.search is None:
            return True
        return self.search in cp_id.lower() or self.search in location.lower()


def cp_query(query: Mapping[str, str]) -> CpQuery:
    states: set[CpState] = set()
    for name in (_text(query, "state") or "").split(","):
        if not name.strip():
            continue
        try:
            states.add(CpState(name.strip().upper()))
        except ValueError:
            known = ", ".join(s.value for s in CpState)
            bad_request(f"state must be one of {known} (comma-separated), got {name[:40]!r}")
    search = _text(query, "search")
    return CpQuery(frozenset(states), search.lower() if search else None)
