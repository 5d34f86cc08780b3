"""Presentation: events as text for people, or as one JSON object per line for scripts.

Text goes to stdout, problems to stderr; colours and the self-rewriting progress
line only on a terminal (and never with ``NO_COLOR``). JSON goes to stdout only.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Sequence
from typing import Protocol, TextIO

from evproto.messages import Outcome

from evdriver.events import (
    Authorized,
    BadLine,
    CpListed,
    Denied,
    Event,
    InputRefused,
    Interrupted,
    NoSession,
    Problem,
    Progress,
    Requested,
    Resumed,
    SessionError,
    Started,
    Stopping,
    Summary,
    TicketReceived,
    Waiting,
)

__all__ = ["JsonRenderer", "Renderer", "TextRenderer", "make_renderer"]


class Renderer(Protocol):
    def show(self, event: Event) -> None: ...

    def show_cps(self, cps: Sequence[CpListed]) -> None: ...

    def say(self, text: str) -> None:
        """A line for people (menu help); scripts do not need it."""

    def prompt(self, text: str) -> None:
        """Ask for input on a terminal (no newline)."""


def make_renderer(as_json: bool, out: TextIO | None = None, err: TextIO | None = None) -> Renderer:
    out = out or sys.stdout
    if as_json:
        return JsonRenderer(out)
    return TextRenderer(out, err or sys.stderr)


class JsonRenderer:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def show(self, event: Event) -> None:
        self._out.write(json.dumps(event.to_json(), ensure_ascii=False) + "\n")
        self._out.flush()

    def show_cps(self, cps: Sequence[CpListed]) -> None:
        for cp in cps:
            self.show(cp)

    def say(self, text: str) -> None:
        pass

    def prompt(self, text: str) -> None:
        pass


_GREEN, _RED, _YELLOW, _BOLD, _DIM = "32", "31", "33", "1", "2"


def duration(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def money(eur: float) -> str:
    return f"{eur:.2f} €"


def energy(kwh: float) -> str:
    return f"{kwh:.3f} kWh"


class TextRenderer:
    def __init__(self, out: TextIO, err: TextIO) -> None:
        self._out = out
        self._err = err
        self._terminal = out.isatty()
        self._colour = self._terminal and "NO_COLOR" not in os.environ
        self._live_line = False  # a progress line is on screen without its newline

    # --- plumbing ---------------------------------------------------------------------

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self._colour else text

    def _line(self, text: str, *, err: bool = False) -> None:
        self._end_live_line()
        stream = self._err if err else self._out
        stream.write(text + "\n")
        stream.flush()

    def _end_live_line(self) -> None:
        if self._live_line:
            self._out.write("\n")
            self._live_line = False

    def say(self, text: str) -> None:
        self._line(text)

    def prompt(self, text: str) -> None:
        self._end_live_line()
        self._out.write(text)
        self._out.flush()

    # --- events -----------------------------------------------------------------------

    @functools.singledispatchmethod
    def show(self, event: Event) -> None:
        self._line(str(event.to_json()))

    @show.register
    def _(self, event: Requested) -> None:
        where = event.cp_id or "the next available charging point"
        self._line(f"Requesting a supply at {where}…")

    @show.register
    def _(self, event: Authorized) -> None:
        price = "" if event.price is None else f" at {event.price:.2f} €/kWh"
        self._line(
            self._paint(f"Authorized at {event.cp_id}{price}", _GREEN)
            + f" (session {event.session_id[:8]}). Plug in the vehicle."
        )

    @show.register
    def _(self, event: Denied) -> None:
        where = event.cp_id or "any charging point"
        self._line(self._paint(f"Denied at {where}: {event.reason or 'no reason given'}", _RED))

    @show.register
    def _(self, event: Started) -> None:
        self._line(f"Supply started at {event.cp_id}.")

    @show.register
    def _(self, event: Progress) -> None:
        text = (
            f"  {event.cp_id}  {energy(event.kwh):>12}  {money(event.eur):>10}"
            f"  {duration(event.elapsed_s):>8}"
        )
        if self._terminal:
            self._out.write("\r\x1b[2K" + self._paint(text, _BOLD))
            self._out.flush()
            self._live_line = True
        else:
            self._line(text)

    @show.register
    def _(self, event: SessionError) -> None:
        self._line(self._paint(f"{event.cp_id}: {event.reason} — waiting for the ticket", _YELLOW))

    @show.register
    def _(self, event: Problem) -> None:
        self._line(self._paint(event.message, _RED), err=True)

    @show.register
    def _(self, event: BadLine) -> None:
        self._line(f"line {event.line}: {event.text!r} skipped: {event.reason}", err=True)

    @show.register
    def _(self, event: InputRefused) -> None:
        self._line(f"{event.reason}; type a CP id, ENTER, 'list' or 'quit'.", err=True)

    @show.register
    def _(self, event: TicketReceived) -> None:
        t = event.ticket
        colour = _GREEN if t.outcome is Outcome.COMPLETED else _RED
        outcome = t.outcome.value + (f" ({t.reason})" if t.reason else "")
        self._line(self._paint(f"Ticket for session {t.session_id[:8]} at {t.cp_id}", _BOLD))
        for label, value in (
            ("energy", energy(t.kwh)),
            ("cost", money(t.eur)),
            ("price", f"{t.price:.2f} €/kWh"),
            ("duration", duration(event.duration_s)),
            ("outcome", self._paint(outcome, colour)),
        ):
            self._line(f"  {label:<10}{value}")

    @show.register
    def _(self, event: Resumed) -> None:
        where = event.cp_id or "the next available charging point"
        if event.status == "ended":
            self._line(f"Your last session at {where} ended while you were away:")
            return
        so_far = ""
        if event.kwh or event.eur:
            so_far = f"; so far {energy(event.kwh)}, {money(event.eur)}"
        self._line(f"Resuming your session at {where} ({event.status}{so_far})…")

    @show.register
    def _(self, event: Stopping) -> None:
        self._line(f"Asking the central to stop the supply at {event.cp_id or 'your CP'}…")

    @show.register
    def _(self, event: Waiting) -> None:
        self._line(
            self._paint(
                f"No news from {event.cp_id} for {event.silent_s:.0f} s; "
                "the session is still open, waiting (Ctrl-C asks to stop).",
                _DIM,
            )
        )

    @show.register
    def _(self, event: Interrupted) -> None:
        if event.session_id is None:
            self._line("Interrupted.", err=True)
            return
        self._line(
            f"Left before the ticket arrived. To watch the session again: {event.resume_hint}",
            err=True,
        )

    @show.register
    def _(self, event: NoSession) -> None:
        self._line(f"{event.driver_id} has no running supply.")

    @show.register
    def _(self, event: Summary) -> None:
        self._line(self._paint("Summary", _BOLD))
        header = f"  {'line':>4}  {'CP':<12} {'outcome':<18} {'kWh':>9} {'€':>8}  reason"
        self._line(header)
        for row in event.rows:
            outcome = f"{row.outcome} ({row.exit_code})" if row.exit_code else row.outcome
            self._line(
                f"  {row.line:>4}  {row.cp_id[:12]:<12} {outcome:<18} {row.kwh:>9.3f}"
                f" {row.eur:>8.2f}  {row.reason}"
            )
        self._line(f"exit code {event.exit_code}")

    def show_cps(self, cps: Sequence[CpListed]) -> None:
        if not cps:
            self._line("No charging points known yet (the central publishes them on start).")
            return
        self._line(f"  {'':2}{'CP':<12} {'location':<24} {'price':>12}  state")
        for cp in cps:
            mark = self._paint("✓", _GREEN) if cp.available else " "
            price = "-" if cp.price is None else f"{cp.price:.2f} €/kWh"
            label = cp.state.label
            if not cp.available:
                label = self._paint(label, _DIM)
            self._line(f"  {mark} {cp.cp_id[:12]:<12} {cp.location[:24]:<24} {price:>12}  {label}")
        available = sum(1 for cp in cps if cp.available)
        self._line(f"{available} of {len(cps)} available now.")
