"""Billing is the central's: what a CP reports must be possible, and € is computed here.

Pure checks on a session and a report (no I/O). A report that cannot be
true raises :class:`ImplausibleRecord`: it is refused and journaled, never
summed. Bounds use the central's own clock from the session's authorization,
so they only get looser when records are processed late (a catch-up after a
restart), never wrongly strict.
"""

from __future__ import annotations

from evproto.errors import ImplausibleRecord
from evproto.messages import Telemetry, Ticket

from evcentral.records import SessionRecord

__all__ = ["bill", "check_telemetry", "check_ticket"]

# Engines report once a second; twice that rate plus a few is already generous.
_SEQ_PER_SECOND = 2.0
_SEQ_SLACK = 10
# Energy may exceed power × time by rounding and delivery delays only (and the
# operator's --energy-margin-kwh).
_ENERGY_FACTOR = 1.05
_EUR_DIGITS = 6


def bill(kwh: float, price: float, max_eur: float | None = None) -> float:
    """€ for ``kwh`` at the session's agreed price (capped by the driver's € limit)."""
    eur = round(kwh * price, _EUR_DIGITS)
    return eur if max_eur is None else min(eur, max_eur)


def _energy_bound(session: SessionRecord, power_kw: float, now: float, margin: float) -> float:
    hours = max(0.0, now - session.authorized_at) / 3600
    return power_kw * hours * _ENERGY_FACTOR + margin


def _fail(kind: str, problem: str) -> ImplausibleRecord:
    return ImplausibleRecord(f"{kind}: {problem}")


def check_telemetry(
    session: SessionRecord, msg: Telemetry, now: float, max_power_kw: float, margin_kwh: float
) -> None:
    """``msg`` is newer than the last report (``seq`` above it): may it be true?"""
    seq_bound = max(0.0, now - session.authorized_at) * _SEQ_PER_SECOND + _SEQ_SLACK
    if msg.seq > seq_bound:
        raise _fail("telemetry", f"seq {msg.seq} is beyond {seq_bound:.0f} for the time elapsed")
    if msg.kwh < session.kwh:
        raise _fail("telemetry", f"kWh went down from {session.kwh:g} to {msg.kwh:g}")
    if msg.power_kw > max_power_kw:
        raise _fail("telemetry", f"power {msg.power_kw:g} kW is above {max_power_kw:g} kW")
    bound = _energy_bound(session, msg.power_kw, now, margin_kwh)
    if msg.kwh > bound:
        raise _fail("telemetry", f"{msg.kwh:g} kWh is more than {bound:.3f} kWh possible")


def check_ticket(
    session: SessionRecord, msg: Ticket, now: float, power_kw: float, margin_kwh: float
) -> None:
    """The engine's ticket: not below the last telemetry, not beyond the possible."""
    if msg.last_seq < session.last_seq:
        raise _fail("ticket", f"last_seq {msg.last_seq} is below {session.last_seq} seen")
    if msg.kwh + 1e-9 < session.kwh:
        raise _fail("ticket", f"{msg.kwh:g} kWh is below the last telemetry ({session.kwh:g})")
    bound = _energy_bound(session, power_kw, now, margin_kwh)
    if msg.kwh > bound:
        raise _fail("ticket", f"{msg.kwh:g} kWh is more than {bound:.3f} kWh possible")
