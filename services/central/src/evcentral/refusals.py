"""Refused access at the central's doors (HTTP tokens, CP registration and login):
counted, journaled.

Every refusal increments ``evcharging_central_access_refused_total{door, reason}``
and is journaled (kind ``security``) with the peer's address. A peer that keeps
knocking is journaled at most once per reason every ``quiet_s`` seconds, the
next line saying how many were only counted meanwhile: a scan must not push
the operator's real events out of the dashboard's log.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable

from evcentral.journal import Journal, LogKind

__all__ = ["REFUSALS", "Door", "Refusal", "Refusals"]

_QUIET_S = 10.0
_MAX_TRACKED = 4096  # peers remembered for throttling; beyond this the table starts over


class Door(enum.StrEnum):
    HTTP = "http"
    REGISTRATION = "registration"
    LOGIN = "login"  # a registered CP's monitor proving its secret


class Refusal(enum.StrEnum):
    """Why a caller was turned away (a metric label and the journal's wording)."""

    NO_TOKEN = "no_token"
    WRONG_TOKEN = "wrong_token"
    OPERATOR_ONLY = "operator_only"
    KNOWN_CP = "known_cp"
    RATE_LIMITED = "rate_limited"
    BAD_REGISTRATION_TOKEN = "bad_registration_token"
    REGISTRATION_DISABLED = "registration_disabled"
    BAD_CREDENTIALS = "bad_credentials"


REFUSALS: dict[Door, tuple[Refusal, ...]] = {
    Door.HTTP: (Refusal.NO_TOKEN, Refusal.WRONG_TOKEN, Refusal.OPERATOR_ONLY),
    Door.REGISTRATION: (
        Refusal.KNOWN_CP,
        Refusal.RATE_LIMITED,
        Refusal.BAD_REGISTRATION_TOKEN,
        Refusal.REGISTRATION_DISABLED,
    ),
    Door.LOGIN: (Refusal.BAD_CREDENTIALS,),
}


class Refusals:
    def __init__(
        self,
        journal: Journal,
        count: Callable[[Door, Refusal], None],
        *,
        quiet_s: float = _QUIET_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._journal = journal
        self._count = count
        self._quiet_s = quiet_s
        self._clock = clock
        self._last: dict[tuple[str, Door, Refusal], tuple[float, int]] = {}

    def refuse(
        self, door: Door, reason: Refusal, peer: str, what: str, *, cp_id: str | None = None
    ) -> None:
        """Count a refusal of ``what`` (e.g. ``GET /api/cps``) from ``peer``; journal it
        unless this peer was journaled for the same reason within the quiet period."""
        self._count(door, reason)
        key = (peer, door, reason)
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self._quiet_s:
            self._last[key] = (last[0], last[1] + 1)
            return
        if len(self._last) >= _MAX_TRACKED:
            self._last.clear()
        self._last[key] = (now, 0)
        more = f" (+{last[1]} more since the last line)" if last and last[1] else ""
        self._journal.record(
            LogKind.SECURITY,
            f"{door.value} refused from {peer}: {what}: {reason.value}{more}",
            cp_id=cp_id,
            level=logging.WARNING,
        )
