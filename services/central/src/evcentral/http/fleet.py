"""The fleet-wide reads of the dashboard and ``evctl``: the summary strip, a CP's
state history, and sessions as CSV (docs/interfaces.md "Central HTTP API")."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from evproto.states import CpState

from evcentral.db import Database, SessionFilter
from evcentral.history import StateHistory
from evcentral.http.queries import session_query, since_query
from evcentral.records import SessionRecord
from evcentral.registry import Registry
from evcentral.views import session_view

__all__ = ["CSV_COLUMNS", "FleetReads"]

_CSV_MAX_ROWS = 100_000
_CSV_PAGE = 1000
CSV_COLUMNS = (
    "session_id",
    "cp_id",
    "driver_id",
    "origin",
    "status",
    "authorized_at",
    "started_at",
    "ended_at",
    "kwh",
    "eur",
    "price",
    "outcome",
    "reason",
)
_TIMES = frozenset({"authorized_at", "started_at", "ended_at"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # spreadsheets would run these


class FleetReads:
    def __init__(
        self,
        registry: Registry,
        db: Database,
        history: StateHistory,
        open_sessions: Callable[[], dict[str, SessionRecord]],
        *,
        shown: Callable[[web.Request, dict[str, Any]], dict[str, Any]],
    ) -> None:
        self._registry = registry
        self._db = db
        self._history = history
        self._open_sessions = open_sessions
        self._shown = shown  # the view as the caller may see it (drivers redacted for viewers)

    async def summary(self, request: web.Request) -> web.Response:
        since = since_query(request.query, _utc_midnight())
        today = self._db.totals(SessionFilter(since=since))
        counts = self._registry.counts
        return web.json_response(
            {
                "cps": len(self._registry),
                "states": {state.value: counts[state] for state in CpState},
                "sessions_open": len(self._registry.sessions),
                "since": since,
                "sessions": today.sessions,
                "kwh": round(today.kwh, 3),
                "eur": round(today.eur, 2),
            }
        )

    async def cp_history(self, request: web.Request) -> web.Response:
        cp_id = request.match_info["cp_id"]
        if self._registry.get(cp_id) is None:
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no charging point {cp_id[:100]!r}"}),
                content_type="application/json",
            )
        return web.json_response(
            {"cp_id": cp_id, "history": [c.to_json() for c in self._history.of(cp_id)]}
        )

    async def sessions_csv(self, request: web.Request) -> web.StreamResponse:
        query = session_query(request.query, default_limit=_CSV_MAX_ROWS, max_limit=_CSV_MAX_ROWS)
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": 'attachment; filename="sessions.csv"',
                "Cache-Control": "no-store",
            }
        )
        await response.prepare(request)
        await response.write(_csv_rows([CSV_COLUMNS]))
        live = self._open_sessions()
        # sessions authorized while the export runs would shift the pages (newest first)
        where = query.where
        if where.until is None:
            where = dataclasses.replace(where, until=time.time())
        offset, left = query.offset, query.limit
        while left > 0:
            page = self._db.list_sessions(where=where, limit=min(left, _CSV_PAGE), offset=offset)
            if not page:
                break
            views = (self._shown(request, session_view(live.get(s.session_id, s))) for s in page)
            await response.write(_csv_rows(_csv_cells(view) for view in views))
            offset += len(page)
            left -= len(page)
        await response.write_eof()
        return response


def _csv_cells(view: dict[str, Any]) -> list[str]:
    return [_csv_cell(name, view[name]) for name in CSV_COLUMNS]


def _csv_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _TIMES:
        return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if name != "eur" else f"{value:.2f}"
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_rows(rows: Iterable[Iterable[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def _utc_midnight() -> float:
    now = time.time()
    return now - now % 86_400
