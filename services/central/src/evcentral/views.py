"""The JSON shapes of the HTTP API and the dashboard feed (docs/interfaces.md)."""

from __future__ import annotations

from typing import Any

from evcentral.records import SessionRecord
from evcentral.registry import ChargingPoint

__all__ = ["cp_view", "session_view"]


def cp_view(cp: ChargingPoint) -> dict[str, Any]:
    session = cp.session
    return {
        "cp_id": cp.cp_id,
        "location": cp.location,
        "price": cp.price,
        "state": cp.state.value,
        "colour": cp.state.colour,
        "label": cp.state.label,
        "connected": cp.connected,
        "health": cp.health.value if cp.connected and cp.health else None,
        "driver_id": session.driver_id if session else None,
        "session_id": session.session_id if session else None,
        "kwh": session.kwh if session else 0.0,
        "eur": session.eur if session else 0.0,
        "last_seen": cp.last_seen,
    }


def session_view(s: SessionRecord) -> dict[str, Any]:
    return {
        "session_id": s.session_id,
        "cp_id": s.cp_id,
        "driver_id": s.driver_id,
        "origin": s.origin.value,
        "status": s.status.value,
        "authorized_at": s.authorized_at,
        "started_at": s.started_at,
        "ended_at": s.ended_at,
        "kwh": s.kwh,
        "eur": s.eur,
        "price": s.price,
        "last_seq": s.last_seq,
        "outcome": s.outcome.value if s.outcome else None,
        "reason": s.reason,
    }
