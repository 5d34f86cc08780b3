"""The conservation audit: nothing authorized is lost, nothing is billed twice.

From what the topics hold (``ev.supply.responses``, ``ev.supply.telemetry``,
``ev.driver.updates``) and what ``/api/sessions`` says:

- every authorized session (one session per request id) has exactly one ticket
  for its driver on ``ev.driver.updates`` (the engine's, relayed, or the
  central's own; an identical copy, which the central's outbox may send again
  after a crash, is the same ticket to the driver); a manual session has none
  there and is closed in /api/sessions;
- a ticket that is not ``completed`` says why;
- per session, the telemetry sequence numbers are 1..last without a gap, and a
  repeated number carries the same figures (a replay, not a second count);
- the delivered ticket's ``last_seq``, kWh and € are the last telemetry's, and
  € is kWh × the session's price;
- /api/sessions lists each authorized session as ended with the ticket's
  figures and outcome, and lists no session that was never authorized.

Pure logic on typed messages: the harness reads the topics, this judges them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from evproto.messages import (
    Origin,
    Outcome,
    SupplyResponse,
    Telemetry,
    Ticket,
)
from evproto.topics import Topic
from evstack.kafka_probe import TopicContents

__all__ = ["Audit", "audit"]

_KWH_TOLERANCE = 1e-6
_EUR_TOLERANCE = 1e-5


@dataclass(slots=True)
class _Trail:
    """What the topics say about one authorized session."""

    session_id: str
    cp_id: str
    origin: Origin
    request_ids: set[str] = field(default_factory=set)
    telemetry: dict[int, Telemetry] = field(default_factory=dict)
    driver_tickets: list[Ticket] = field(default_factory=list)


@dataclass(slots=True)
class Audit:
    problems: list[str] = field(default_factory=list)
    authorized: int = 0
    completed: int = 0
    not_completed: int = 0
    kwh: float = 0.0
    eur: float = 0.0

    def summary(self) -> str:
        return (
            f"{self.authorized} sessions authorized, {self.completed} completed, "
            f"{self.not_completed} aborted or cancelled, {self.kwh:.6f} kWh, {self.eur:.6f} €"
        )


def audit(
    contents: TopicContents,
    api_sessions: list[dict[str, Any]],
    unenrolled: frozenset[str] = frozenset(),
) -> Audit:
    """``unenrolled``: drivers with no credential (an OCPP card holder without the app):
    the central has no key to seal their tickets with, so like a manual session theirs
    is judged by what /api/sessions stored, and none may reach ev.driver.updates."""
    result = Audit(problems=[f"undecodable record {u}" for u in contents.undecodable])
    result.problems += [f"topic {t.value} does not exist" for t in contents.missing]
    trails = _authorized_sessions(contents, result.problems)
    _collect_telemetry(contents, trails, result.problems)
    _collect_driver_tickets(contents, trails, result.problems)
    listed = {s["session_id"]: s for s in api_sessions}
    for session_id in listed.keys() - trails.keys():
        result.problems.append(
            f"session {session_id} is in /api/sessions but no SupplyResponse authorized it"
        )
    result.authorized = len(trails)
    for trail in trails.values():
        _judge(trail, listed.get(trail.session_id), result, unenrolled)
    return result


def _authorized_sessions(contents: TopicContents, problems: list[str]) -> dict[str, _Trail]:
    trails: dict[str, _Trail] = {}
    sessions_of_request: dict[str, set[str]] = defaultdict(set)
    for msg in contents.of(Topic.SUPPLY_RESPONSES):
        if not isinstance(msg, SupplyResponse) or not msg.authorized:  # or an enrollment
            continue
        if msg.session_id is None or msg.cp_id is None:
            problems.append(f"authorization {msg.request_id} names no session or CP")
            continue
        trail = trails.setdefault(msg.session_id, _Trail(msg.session_id, msg.cp_id, msg.origin))
        trail.request_ids.add(msg.request_id)
        sessions_of_request[msg.request_id].add(msg.session_id)
    for request_id, sessions in sessions_of_request.items():
        if len(sessions) > 1:
            problems.append(f"request {request_id} was authorized {len(sessions)} times")
    for trail in trails.values():
        if len(trail.request_ids) > 1:
            problems.append(f"session {trail.session_id} answers several requests")
    return trails


def _collect_telemetry(
    contents: TopicContents, trails: dict[str, _Trail], problems: list[str]
) -> None:
    for msg in contents.of(Topic.TELEMETRY):
        if not isinstance(msg, Telemetry):
            continue
        trail = trails.get(msg.session_id)
        if trail is None:
            problems.append(f"telemetry seq {msg.seq} for unauthorized session {msg.session_id}")
            continue
        seen = trail.telemetry.get(msg.seq)
        if seen is None:
            trail.telemetry[msg.seq] = msg
        elif abs(seen.kwh - msg.kwh) > _KWH_TOLERANCE or abs(seen.eur - msg.eur) > _EUR_TOLERANCE:
            problems.append(
                f"session {msg.session_id}: telemetry seq {msg.seq} sent twice with different "
                f"figures ({seen.kwh} kWh, then {msg.kwh} kWh)"
            )


def _collect_driver_tickets(
    contents: TopicContents, trails: dict[str, _Trail], problems: list[str]
) -> None:
    for msg in contents.of(Topic.DRIVER_UPDATES):
        if not isinstance(msg, Ticket):
            continue
        trail = trails.get(msg.session_id)
        if trail is None:
            problems.append(f"ticket delivered for unauthorized session {msg.session_id}")
            continue
        if msg not in trail.driver_tickets:  # an identical copy: the driver shows one
            trail.driver_tickets.append(msg)


def _judge(
    trail: _Trail, listed: dict[str, Any] | None, result: Audit, unenrolled: frozenset[str]
) -> None:
    problems = result.problems
    sid = trail.session_id
    if listed is None:
        problems.append(f"session {sid} at {trail.cp_id} is missing from /api/sessions")
        return
    if listed.get("status") != "ended":
        problems.append(f"session {sid} at {trail.cp_id} never ended: {listed.get('status')}")
        return
    delivered = _delivered_figures(trail, listed, problems, unenrolled)
    if delivered is None:
        return
    outcome, reason, last_seq, kwh, eur, price = delivered
    if outcome is Outcome.COMPLETED:
        result.completed += 1
    else:
        result.not_completed += 1
        if not reason:
            problems.append(f"session {sid}: {outcome.value} ticket without a reason")
    result.kwh += kwh
    result.eur += eur
    _judge_telemetry(trail, last_seq, kwh, eur, problems)
    if abs(eur - kwh * price) > _EUR_TOLERANCE:
        problems.append(f"session {sid}: {eur} € is not {kwh} kWh × {price} €/kWh")
    for name, want in (("kwh", kwh), ("eur", eur)):
        if abs(float(listed[name]) - want) > _KWH_TOLERANCE:
            problems.append(f"session {sid}: /api/sessions {name}={listed[name]}, ticket {want}")
    if listed["last_seq"] != last_seq or listed["outcome"] != outcome.value:
        problems.append(
            f"session {sid}: /api/sessions says seq {listed['last_seq']} {listed['outcome']}, "
            f"the ticket seq {last_seq} {outcome.value}"
        )


_Figures = tuple[Outcome, str, int, float, float, float]


def _delivered_figures(
    trail: _Trail, listed: dict[str, Any], problems: list[str], unenrolled: frozenset[str]
) -> _Figures | None:
    """The ticket the driver got, or for a manual session (or a driver with no
    credential) the one the central stored."""
    sid = trail.session_id
    tickets = trail.driver_tickets
    if trail.origin is Origin.MANUAL or listed.get("driver_id") in unenrolled:
        if tickets:
            problems.append(f"session {sid}: {len(tickets)} tickets sent to no driver's app")
        return (
            Outcome(listed["outcome"]),
            str(listed["reason"]),
            int(listed["last_seq"]),
            float(listed["kwh"]),
            float(listed["eur"]),
            float(listed["price"]),
        )
    if not tickets:
        problems.append(f"session {sid} at {trail.cp_id}: no ticket delivered to its driver")
        return None
    if len(tickets) > 1:
        figures = ", ".join(f"{t.kwh} kWh {t.outcome.value}" for t in tickets)
        problems.append(f"session {sid}: {len(tickets)} tickets delivered ({figures})")
    t = tickets[0]
    return t.outcome, t.reason, t.last_seq, t.kwh, t.eur, t.price


def _judge_telemetry(
    trail: _Trail, last_seq: int, kwh: float, eur: float, problems: list[str]
) -> None:
    sid = trail.session_id
    seqs = trail.telemetry
    top = max(seqs, default=0)
    missing = sorted(set(range(1, top + 1)) - seqs.keys())
    if missing:
        problems.append(f"session {sid}: telemetry seq {missing[:10]} missing (of 1..{top})")
    if last_seq != top:
        problems.append(f"session {sid}: ticket last_seq {last_seq}, last telemetry seq {top}")
        return
    last_kwh, last_eur = (seqs[top].kwh, seqs[top].eur) if top else (0.0, 0.0)
    if abs(kwh - last_kwh) > _KWH_TOLERANCE or abs(eur - last_eur) > _EUR_TOLERANCE:
        problems.append(
            f"session {sid}: ticket {kwh} kWh {eur} €, last telemetry {last_kwh} kWh {last_eur} €"
        )
