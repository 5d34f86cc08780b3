"""Checking CP and driver ids typed by people, with evproto's own id rule."""

from __future__ import annotations

import dataclasses
import re

from evproto.messages import SupplyRequest

__all__ = ["id_problem"]

_CP_ID = next(f for f in dataclasses.fields(SupplyRequest) if f.name == "cp_id")
_PATTERN: re.Pattern[str] = _CP_ID.metadata["pattern"]
_RULE: str = _CP_ID.metadata["pattern_help"]


def id_problem(text: str) -> str | None:
    """Why ``text`` is not a valid id, or None when it is one."""
    if _PATTERN.match(text):
        return None
    if not text:
        return "an id cannot be empty"
    return f"{text[:80]!r} is not a valid id ({_RULE})"
