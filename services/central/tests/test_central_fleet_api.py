"""The fleet reads of the dashboard and evctl: CP filters, the summary strip, a CP's
state history, sessions filtered and paged, and the CSV export."""

from __future__ import annotations

import csv
import io
import time

import pytest
from evcentral.app import Central
from evproto.messages import Outcome
from evproto.states import CpState


@pytest.fixture
def history_of_sessions(central: Central, ended_session) -> float:
    """30 ended sessions: D1 at CP-A (completed), D2 at CP-B (aborted), an hour apart
    from ``start`` on."""
    start = time.time() - 40 * 3600
    for n in range(30):
        driver, cp, outcome = (
            ("D1", "CP-A", Outcome.COMPLETED) if n % 2 == 0 else ("D2", "CP-B", Outcome.ABORTED)
        )
        session = ended_session(f"s-{n:03d}", cp, driver, outcome, start + n * 3600)
        session.reason = "=cmd()" if n == 0 else ""
        central.db.save_session(session)
    return start


async def test_cps_filter_by_state_and_search(central: Central, fleet: list[str], http) -> None:
    online, offline = fleet

    async def ids(query: str) -> list[str]:
        status, body = await http.call(central, "GET", f"/api/cps?{query}")
        assert status == 200, body
        return [cp["cp_id"] for cp in body["cps"]]

    assert await ids("state=ACTIVE") == [online]
    assert await ids("state=disconnected,active") == [online, offline]
    assert await ids("search=south") == [offline]
    assert await ids(f"search={offline[-4:].upper()}") == [offline]
    assert await ids("state=BROKEN_DOWN&search=North") == []
    status, body = await http.call(central, "GET", "/api/cps?state=ON_FIRE")
    assert status == 400 and "ACTIVE" in body["error"]


async def test_whoami_names_the_role_of_the_token(central: Central, http) -> None:
    assert await http.call(central, "GET", "/api/whoami") == (200, {"role": "operator"})
    viewer = await http.call(central, "GET", "/api/whoami", token="view-token")
    assert viewer == (200, {"role": "viewer"})
    status, body = await http.call(central, "GET", "/api/whoami", token="wrong")
    assert status == 401 and body["error"]


async def test_summary_counts_states_and_todays_sessions(
    central: Central, fleet: list[str], history_of_sessions: float, http
) -> None:
    since = history_of_sessions + 20 * 3600  # the last 10 sessions
    status, body = await http.call(central, "GET", f"/api/summary?since={since}")
    assert status == 200
    assert body["states"]["ACTIVE"] == 1 and body["states"]["DISCONNECTED"] == 1
    assert body["states"]["BROKEN_DOWN"] == 0 and body["cps"] == 2
    assert (body["sessions"], body["kwh"], body["eur"], body["since"]) == (10, 15.0, 7.5, since)
    assert body["sessions_open"] == 0
    status, body = await http.call(central, "GET", "/api/summary?since=yesterday")
    assert status == 400 and "since" in body["error"]


async def test_history_lists_state_changes_newest_first(
    central: Central, fleet: list[str], http, wait_until
) -> None:
    online, _offline = fleet
    assert (await http.call(central, "POST", f"/api/cps/{online}/stop"))[0] == 202
    await wait_until(lambda: central.registry.state_of(online) is CpState.STOPPED, what="STOPPED")
    status, body = await http.call(central, "GET", f"/api/cps/{online}/history")
    assert status == 200 and body["cp_id"] == online
    states = [change["state"] for change in body["history"]]
    assert states[:2] == ["STOPPED", "ACTIVE"]
    assert body["history"][0]["label"] == "Out of Order"
    status, body = await http.call(central, "GET", "/api/cps/nope/history")
    assert status == 404 and "nope" in body["error"]


async def test_sessions_filter_and_page(central: Central, history_of_sessions: float, http) -> None:
    async def page(query: str) -> dict:
        status, body = await http.call(central, "GET", f"/api/sessions?{query}")
        assert status == 200, body
        return body  # type: ignore[no-any-return]

    body = await page("driver_id=D1&limit=4")
    assert body["total"] == 15 and len(body["sessions"]) == 4
    assert {s["driver_id"] for s in body["sessions"]} == {"D1"}
    assert [s["session_id"] for s in body["sessions"]] == ["s-028", "s-026", "s-024", "s-022"]
    body = await page("driver_id=D1&limit=4&offset=12")
    assert [s["session_id"] for s in body["sessions"]] == ["s-004", "s-002", "s-000"]
    body = await page("outcome=aborted&cp_id=CP-B")
    assert body["total"] == 15 and {s["outcome"] for s in body["sessions"]} == {"aborted"}
    start = history_of_sessions
    body = await page(f"since={start + 3600 * 10}&until={start + 3600 * 12}")
    assert [s["session_id"] for s in body["sessions"]] == ["s-011", "s-010"]
    assert (await page("outcome=open"))["total"] == 0
    for bad in ("outcome=lost", "since=soon", "offset=-1", f"driver_id={'x' * 300}"):
        status, body = await http.call(central, "GET", f"/api/sessions?{bad}")
        assert status == 400 and body["error"], bad


async def test_sessions_csv_has_a_header_and_every_matching_row(
    central: Central, history_of_sessions: float, http
) -> None:
    status, text = await http.call(central, "GET", "/api/sessions.csv?driver_id=D1")
    assert status == 200
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["session_id", "cp_id", "driver_id"]
    assert len(rows) == 16 and rows[1][0] == "s-028"
    row = dict(zip(rows[0], rows[-1], strict=True))
    assert (row["session_id"], row["kwh"], row["eur"], row["outcome"]) == (
        "s-000", "1.5", "0.75", "completed",
    )  # fmt: skip
    assert row["reason"] == "'=cmd()"  # a spreadsheet shows it, never runs it
    assert row["ended_at"].endswith("+00:00")
    status, text = await http.call(central, "GET", "/api/sessions.csv?limit=2")
    assert status == 200 and len(text.strip().splitlines()) == 3
