"""One supply session: its energy arithmetic and the messages it reports.

Pure: no I/O and no clock; every time is passed in, so the figures are tested
exactly. Energy is computed from the elapsed time (not summed per interval) so
it never drifts, and a limit stops the supply at the exact instant it is
reached: the last interval is partial and nothing overshoots.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from evproto.messages import Outcome, SupplyStarted, Telemetry, Ticket

__all__ = ["Figures", "Limits", "Session"]

_KWH_DIGITS = 6
_EUR_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Limits:
    """Optional limits of a supply, from the start directive."""

    max_kwh: float | None = None
    max_eur: float | None = None
    max_minutes: float | None = None

    def first_reached(self, power_kw: float, price: float) -> tuple[float, str] | None:
        """Seconds of supply until the first limit is reached, and the ticket's reason."""
        candidates: list[tuple[float, str]] = []
        if self.max_kwh is not None:
            seconds = self.max_kwh * 3600 / power_kw
            candidates.append((seconds, f"limit reached: {self.max_kwh:g} kWh"))
        if self.max_eur is not None and price > 0:
            seconds = self.max_eur * 3600 / (power_kw * price)
            candidates.append((seconds, f"limit reached: {self.max_eur:g} €"))
        if self.max_minutes is not None:
            candidates.append((self.max_minutes * 60, f"limit reached: {self.max_minutes:g} min"))
        return min(candidates, key=lambda c: c[0], default=None)


@dataclass(frozen=True, slots=True)
class Figures:
    """Cumulative figures of a supply at one instant."""

    kwh: float = 0.0
    eur: float = 0.0
    elapsed_s: float = 0.0


@dataclass(slots=True)
class Session:
    """A supply the central authorized: waiting for the plug, then supplying."""

    cp_id: str
    session_id: str
    driver_id: str
    price: float
    power_kw: float
    authorized_at: float
    limits: Limits = field(default_factory=Limits)
    plug_due: float | None = None  # automatic plug time; None = wait for the plug key
    plugged_at: float | None = None
    seq: int = 0  # of the last telemetry sent
    reported: Figures = field(default_factory=Figures)  # the last telemetry's figures

    @property
    def plugged(self) -> bool:
        return self.plugged_at is not None

    def limit(self) -> tuple[float, str] | None:
        """The instant the first limit is reached, and why; None without limits or plug."""
        if self.plugged_at is None:
            return None
        reached = self.limits.first_reached(self.power_kw, self.price)
        if reached is None:
            return None
        seconds, reason = reached
        return self.plugged_at + seconds, reason

    def figures_at(self, now: float) -> Figures:
        if self.plugged_at is None:
            return Figures()
        elapsed = max(0.0, now - self.plugged_at)
        limit = self.limit()
        if limit is not None:
            elapsed = min(elapsed, limit[0] - self.plugged_at)
        kwh = round(self.power_kw * elapsed / 3600, _KWH_DIGITS)
        if self.limits.max_kwh is not None:
            kwh = min(kwh, self.limits.max_kwh)
        eur = round(kwh * self.price, _EUR_DIGITS)
        if self.limits.max_eur is not None:
            eur = min(eur, self.limits.max_eur)
        return Figures(kwh, eur, round(elapsed, 3))

    def next_report_at(self, interval: float) -> float | None:
        """The next whole interval after the last report (a late tick skips, never bunches)."""
        if self.plugged_at is None:
            return None
        done = math.floor(self.reported.elapsed_s / interval + 1e-9)
        return self.plugged_at + (done + 1) * interval

    # --- the messages it reports ---------------------------------------------------

    def plug(self, now: float) -> SupplyStarted:
        self.plugged_at = now
        self.plug_due = None
        return SupplyStarted(
            session_id=self.session_id, cp_id=self.cp_id, driver_id=self.driver_id, sent_at=now
        )

    def report(self, now: float) -> Telemetry:
        """The next telemetry: figures at ``now``, ``seq`` one more."""
        figures = self.figures_at(now)
        self.seq += 1
        self.reported = figures
        return Telemetry(
            session_id=self.session_id,
            cp_id=self.cp_id,
            driver_id=self.driver_id,
            seq=self.seq,
            kwh=figures.kwh,
            eur=figures.eur,
            power_kw=self.power_kw,
            elapsed_s=figures.elapsed_s,
            sent_at=now,
        )

    def unreported(self, at: float) -> bool:
        """True when the figures at ``at`` are not yet in a telemetry (or none was sent)."""
        return self.seq == 0 or self.figures_at(at) != self.reported

    def ticket(self, at: float, outcome: Outcome, reason: str) -> Ticket:
        """The ticket: exactly the last telemetry's figures (zero if never plugged)."""
        plugged = self.plugged_at is not None
        figures = self.reported if plugged else Figures()
        return Ticket(
            session_id=self.session_id,
            cp_id=self.cp_id,
            driver_id=self.driver_id,
            last_seq=self.seq,
            kwh=figures.kwh,
            eur=figures.eur,
            price=self.price,
            started_at=self.authorized_at if self.plugged_at is None else self.plugged_at,
            ended_at=at,
            outcome=outcome if plugged else Outcome.CANCELLED,
            reason=str(reason),
        )
