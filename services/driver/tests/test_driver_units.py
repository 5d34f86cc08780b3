"""The driver's pure parts: batch parsing, the state file, renderers, natural CP order."""

from __future__ import annotations

import io
import json

from evdriver.batch import parse_batch
from evdriver.cpstates import sort_key
from evdriver.events import CpListed, NoAnswer, Progress, TicketReceived
from evdriver.render import JsonRenderer, TextRenderer
from evdriver.settings import DriverSettings
from evdriver.state import SavedSession, SavedStatus, StateStore
from evproto.messages import Outcome, Ticket
from evproto.states import CpState


def _ticket(outcome: Outcome = Outcome.COMPLETED, reason: str = "") -> Ticket:
    return Ticket(
        session_id="s1",
        cp_id="CP-1",
        driver_id="D1",
        last_seq=4,
        kwh=1.25,
        eur=0.375,
        price=0.30,
        started_at=100.0,
        ended_at=175.0,
        outcome=outcome,
        reason=reason,
    )


def test_batch_lines_keep_their_numbers_and_flag_bad_ids() -> None:
    lines = parse_batch("# route\nCP-1\n\n  CP-2  # fast one\nCP 3\nany\n")
    assert [(b.number, b.text, b.problem is None) for b in lines] == [
        (2, "CP-1", True),
        (4, "CP-2", True),
        (5, "CP 3", False),
        (6, "any", True),
    ]
    assert lines[3].cp_id is None  # next available
    assert "not a valid id" in (lines[2].problem or "")


def test_state_file_round_trip_and_bad_file(tmp_path) -> None:
    store = StateStore(tmp_path, "D1")
    assert store.load() is None
    record = SavedSession(
        request_id="r1",
        cp_id="CP-1",
        status=SavedStatus.ENDED,
        requested_at=1.0,
        answer_timeout=30.0,
        session_id="s1",
        ticket=_ticket().to_dict(),
    )
    store.save(record)
    loaded = store.load()
    assert loaded == record and loaded.unfinished  # ticket saved, not yet shown
    assert loaded.ticket_message() == _ticket()
    assert [p.name for p in tmp_path.iterdir()] == ["D1.json"]  # no temporary file left

    store.path.write_text("{not json")
    assert store.load() is None


def test_json_renderer_prints_one_object_per_event() -> None:
    out = io.StringIO()
    renderer = JsonRenderer(out)
    renderer.show(Progress(session_id="s1", cp_id="CP-1", seq=2, kwh=0.5, eur=0.15, elapsed_s=2))
    renderer.show(TicketReceived(ticket=_ticket(Outcome.ABORTED, "charging point fault")))
    renderer.show(NoAnswer(request_id="r1", cp_id=None, timeout_s=30))
    progress, ticket, no_answer = (json.loads(line) for line in out.getvalue().splitlines())
    assert progress["event"] == "progress" and progress["kwh"] == 0.5
    assert ticket["outcome"] == "aborted" and ticket["duration_s"] == 75.0
    assert no_answer["code"] == "no_answer"
    assert no_answer["message"] == (
        "the central did not answer within 30 s; it may be down — try again later"
    )


def test_text_renderer_ticket_and_cp_table_without_terminal() -> None:
    out, err = io.StringIO(), io.StringIO()
    renderer = TextRenderer(out, err)
    renderer.show(TicketReceived(ticket=_ticket()))
    renderer.show_cps(
        [
            CpListed(cp_id="CP-1", location="Main St", price=0.3, state=CpState.ACTIVE),
            CpListed(cp_id="CP-2", location="Depot", price=None, state=CpState.STOPPED),
        ]
    )
    text = out.getvalue()
    assert "energy    1.250 kWh" in text and "cost      0.38 €" in text
    assert "duration  1:15" in text and "outcome   completed" in text
    assert "Out of Order" in text and "1 of 2 available now." in text
    assert "\x1b[" not in text


def test_cp_ids_sort_naturally() -> None:
    ids = ["CP-10", "CP-2", "CP-1", "A"]
    assert sorted(ids, key=sort_key) == ["A", "CP-1", "CP-2", "CP-10"]


def test_settings_from_environment(tmp_path) -> None:
    from evdriver.__main__ import SERVICE
    from evproto.config import load_settings
    from evproto.service import build_service_parser

    args = build_service_parser(SERVICE).parse_args(["list"])
    env = {"EV_ID": "D7", "EV_KAFKA": "broker:9093", "EV_ANSWER_TIMEOUT": "5", "EV_JSON": "yes"}
    settings = load_settings(DriverSettings, args, env)
    assert (settings.id, settings.kafka, settings.answer_timeout, settings.json) == (
        "D7",
        "broker:9093",
        5.0,
        True,
    )
