"""The HTTP API: every endpoint, its errors (400/401/403/404), the OpenAPI document, SSE,
who may read and act (viewer and operator tokens) and what a viewer sees of drivers."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from evcentral.app import Central
from evcentral.journal import LogKind
from evproto.messages import Outcome
from evproto.states import CpState

VIEWER_TOKEN = "view-token"  # conftest's


async def test_list_and_get_cps(central: Central, fleet: list[str], http) -> None:
    status, body = await http.call(central, "GET", "/api/cps", token=VIEWER_TOKEN)
    assert status == 200
    assert [cp["cp_id"] for cp in body["cps"]] == fleet
    online = body["cps"][0]
    assert online["state"] == "ACTIVE" and online["colour"] == "green"
    assert (online["location"], online["price"], online["connected"]) == ("North 1", 0.4, True)
    assert set(online) == {
        "cp_id", "location", "price", "state", "colour", "label", "connected", "health",
        "driver_id", "session_id", "kwh", "eur", "last_seen",
    }  # fmt: skip
    status, offline = await http.call(central, "GET", f"/api/cps/{fleet[1]}", token=VIEWER_TOKEN)
    assert status == 200 and offline["state"] == "DISCONNECTED" and offline["colour"] == "grey"
    status, body = await http.call(central, "GET", "/api/cps/CP-nowhere")
    assert status == 404 and "CP-nowhere" in body["error"]


async def test_operator_actions_need_the_token(central: Central, fleet: list[str], http) -> None:
    path = f"/api/cps/{fleet[0]}/stop"
    for token, expected in ((None, 401), ("wrong", 401), (VIEWER_TOKEN, 403)):
        status, body = await http.call(central, "POST", path, token=token)
        assert status == expected and body["error"]
        status, _body = await http.call(central, "POST", "/api/cps/stop", token=token)
        assert status == expected
        status, _body = await http.call(
            central, "PUT", f"/api/cps/{fleet[0]}/price", token=token, json={"price": 1}
        )
        assert status == expected
    cp = central.registry.cps[fleet[0]]
    assert not cp.out_of_service and cp.price == 0.4  # nothing changed


async def test_stop_and_resume_one_and_all(central: Central, fleet: list[str], http) -> None:
    status, body = await http.call(central, "POST", f"/api/cps/{fleet[0]}/stop")
    assert status == 202 and body["state"] == "STOPPED" and body["colour"] == "orange"
    status, body = await http.call(central, "POST", f"/api/cps/{fleet[0]}/resume")
    assert status == 202 and body["state"] == "ACTIVE"
    status, body = await http.call(central, "POST", "/api/cps/nope/stop")
    assert status == 404
    status, body = await http.call(central, "POST", "/api/cps/stop")
    assert status == 202 and body == {"affected": 2}
    assert all(cp.out_of_service for cp in central.registry)
    status, body = await http.call(central, "POST", "/api/cps/resume")
    assert status == 202 and body == {"affected": 2}
    assert central.registry.state_of(fleet[0]) is CpState.ACTIVE


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "not JSON"),
        (b"{}", "no price"),
        (b'{"price": "cheap"}', "must be a number"),
        (b'{"price": true}', "must be a number"),
        (b'{"price": -1}', "between 0 and"),
        (b'{"price": 1000}', "between 0 and"),
        (b'{"price": ' + b"9" * 4000 + b"}", "between 0 and"),
        (b'{"price": ' + b"9" * 5000 + b"}", "not JSON"),
        (b'{"price": 1e999}', "between 0 and"),
        (b'{"price": 0.3, "currency": "EUR"}', "unknown field 'currency'"),
        (b"[" * 60_000, "not JSON"),
        (b"\xff\xfe", "not JSON"),
    ],
)
async def test_bad_price_bodies_are_400(
    central: Central, fleet: list[str], http, body: bytes, problem: str
) -> None:
    status, answer = await http.call(central, "PUT", f"/api/cps/{fleet[0]}/price", data=body)
    assert status == 400 and problem in answer["error"]
    assert central.registry.cps[fleet[0]].price == 0.4


async def test_set_price(central: Central, fleet: list[str], http) -> None:
    status, body = await http.call(
        central, "PUT", f"/api/cps/{fleet[1]}/price", json={"price": 0.35}
    )
    assert status == 200 and body["price"] == 0.35
    status, body = await http.call(central, "PUT", "/api/cps/nope/price", json={"price": 0.35})
    assert status == 404


async def test_an_id_token_is_attached_to_a_driver(central: Central, http) -> None:
    status, _body = await http.call(
        central, "POST", "/api/drivers/alice/tokens", json={"id_token": "04A2B3"}, token=None
    )
    assert status == 401
    status, body = await http.call(
        central, "POST", "/api/drivers/alice/tokens", json={"id_token": "04A2B3"}
    )
    assert status == 201 and body == {"driver_id": "alice", "attached": True}
    assert central.db.driver_of_token("04a2b3") == "alice"  # idTokens are case-insensitive
    for bad in ({"id_token": ""}, {"id_token": "x" * 37}, {"token": "1"}, {"id_token": 5}):
        status, body = await http.call(central, "POST", "/api/drivers/alice/tokens", json=bad)
        assert status == 400 and "id_token" in body["error"]


async def test_sessions_query(central: Central, http) -> None:
    status, body = await http.call(central, "GET", "/api/sessions?limit=5&driver_id=x")
    assert status == 200 and body == {"sessions": [], "total": 0, "offset": 0, "limit": 5}
    for bad in ("0", "many", "5000", "9" * 5000):
        status, body = await http.call(
            central, "GET", f"/api/sessions?limit={bad}", token=VIEWER_TOKEN
        )
        assert status == 400 and "limit" in body["error"]
    for bad in ("%ED%A0%80", "a%00b", "x" * 65, "%E2%82%AC"):
        status, body = await http.call(
            central, "GET", f"/api/sessions?cp_id={bad}", token=VIEWER_TOKEN
        )
        assert status == 400 and "cp_id is not a valid id" in body["error"]


async def _raw_http(central: Central, request: bytes) -> bytes:
    """Bytes no well-behaved client sends (aiohttp's own client refuses them)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", central.http_port)
    try:
        writer.write(request)
        async with asyncio.timeout(5):
            return await reader.read()
    finally:
        writer.close()


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer \xc3\xa9t\xc3\xa9", b"Bearer \xff\xfe", b"\xe2\x82\xac op-token", b"Bearer \x01"],
)
async def test_an_authorization_header_of_any_bytes_is_401(
    central: Central, fleet: list[str], authorization: bytes
) -> None:
    request = (
        f"POST /api/cps/{fleet[0]}/stop HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode()
        + b"Authorization: "
        + authorization
        + b"\r\nContent-Length: 0\r\n\r\n"
    )
    answer = await _raw_http(central, request)
    status_line = answer.split(b"\r\n", 1)[0]
    assert status_line.split()[1] in (b"400", b"401"), answer[:200]
    assert not central.registry.cps[fleet[0]].out_of_service


async def test_probes_metrics_and_unknown_paths(central: Central, http, wait_until) -> None:
    assert await http.call(central, "GET", "/healthz") == (200, {"status": "ok"})
    await wait_until(lambda: central.kafka.broker_ok, what="the broker probe")
    status, body = await http.call(central, "GET", "/readyz")
    assert (status, body) == (
        200,
        {"ready": True, "database": True, "broker": True, "listener": True},
    )
    status, text = await http.call(central, "GET", "/metrics")
    assert status == 200
    for name in (
        'evcharging_central_cps{state="ACTIVE"}',
        'evcharging_central_authorizations_total{reason="unknown_cp",result="denied"}',
        'evcharging_central_kafka_messages_consumed_total{topic="ev.supply.requests"}',
        'evcharging_central_kafka_consumer_lag_messages{topic="ev.supply.telemetry"}',
        'evcharging_central_http_requests_total{method="GET",status="200"}',
        "evcharging_central_session_duration_seconds_bucket",
        "evcharging_central_ready 1.0",
    ):
        assert name in text, name
    status, body = await http.call(central, "GET", "/no/such/page")
    assert status == 404 and "error" in body
    status, body = await http.call(central, "DELETE", "/api/cps")
    assert status == 405 and "error" in body


async def test_readyz_says_when_the_broker_is_away(centrals, http) -> None:
    central = await centrals.start(wait_consuming=False, kafka="127.0.0.1:9")
    status, body = await http.call(central, "GET", "/readyz")
    assert status == 503
    assert body == {"ready": False, "database": True, "broker": False, "listener": True}
    assert (await http.call(central, "GET", "/healthz"))[0] == 200


async def test_the_openapi_document_lists_every_path(central: Central, http) -> None:
    status, doc = await http.call(central, "GET", "/api/openapi.json")
    assert status == 200 and doc["openapi"].startswith("3.1")
    app_paths = {
        info.get("path") or info.get("formatter")
        for resource in central._runner.app.router.resources()  # type: ignore[union-attr]
        if (info := resource.get_info())
    }
    app_paths -= {"/static/app.js", "/static/style.css"}  # the dashboard's own files
    assert app_paths == set(doc["paths"])


async def test_the_dashboard_page_is_served(central: Central, http) -> None:
    status, html = await http.call(central, "GET", "/")
    assert status == 200 and "<title>" in html and "/static/app.js" in html
    status, js = await http.call(central, "GET", "/static/app.js")
    assert status == 200 and "/api/events" in js


async def test_events_stream_a_snapshot_then_changes(
    central: Central, fleet: list[str], http
) -> None:
    url = f"http://127.0.0.1:{central.http_port}/api/events"
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    async with http.session.get(url, headers=headers) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = _sse(response.content)
        snapshot = [await anext(events) for _ in range(2)]
        assert [(kind, data["cp_id"]) for kind, data in snapshot] == [("cp", cp) for cp in fleet]
        status, _body = await http.call(central, "POST", f"/api/cps/{fleet[0]}/stop")
        assert status == 202
        tile: dict = {}
        log: dict = {}
        async for kind, data in events:
            if kind == "cp" and data["state"] == "STOPPED":
                tile = data
            elif kind == "log" and data["kind"] == "directive":
                log = data
            if tile and log:
                break
        assert tile["cp_id"] == fleet[0] and tile["label"] == "Out of Order"
        assert log["message"] == f"STOP sent to {fleet[0]}" and log["cp_id"] == fleet[0]


async def _sse(stream: aiohttp.StreamReader):  # type: ignore[no-untyped-def]
    kind = ""
    while True:
        line = (await asyncio.wait_for(stream.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


READS = (
    "/api/whoami",
    "/api/summary",
    "/api/cps",
    "/api/cps/CP-1",
    "/api/cps/CP-1/history",
    "/api/sessions",
    "/api/sessions.csv",
    "/api/events",
)


async def test_reads_need_a_token_and_each_refusal_is_counted_and_journaled(
    central: Central, http
) -> None:
    for path in READS:
        for token in (None, "guess"):
            status, body = await http.call(central, "GET", path, token=token)
            assert status == 401 and "token" in body["error"], (path, token)
    _status, text = await http.call(central, "GET", "/metrics", token=None)
    for reason, count in (("no_token", len(READS)), ("wrong_token", len(READS))):
        line = f'evcharging_central_access_refused_total{{door="http",reason="{reason}"}} {count}.0'
        assert line in text
    security = [e.message for e in central.journal.recent if e.kind.value == "security"]
    assert security == [  # one line per peer and reason within the quiet period
        "http refused from 127.0.0.1: GET /api/whoami: no_token",
        "http refused from 127.0.0.1: GET /api/whoami: wrong_token",
    ]
    for path in ("/", "/static/app.js", "/healthz", "/readyz", "/metrics", "/api/openapi.json"):
        assert (await http.call(central, "GET", path, token=None))[0] in (200, 503), path


async def test_a_viewer_sees_drivers_by_a_stable_pseudonym(
    central: Central, fleet: list[str], http, ended_session
) -> None:
    for session_id, cp_id, driver_id in (
        ("S-1", fleet[0], "alice"),
        ("S-2", fleet[1], "alice"),
        ("S-3", fleet[0], "bob"),
    ):
        ended = ended_session(session_id, cp_id, driver_id, Outcome.COMPLETED, time.time() - 60)
        central.db.save_session(ended)
    status, body = await http.call(central, "GET", "/api/sessions")  # the operator
    assert status == 200 and {s["driver_id"] for s in body["sessions"]} == {"alice", "bob"}
    status, body = await http.call(central, "GET", "/api/sessions", token=VIEWER_TOKEN)
    assert status == 200
    shown = {(s["session_id"], s["driver_id"]) for s in body["sessions"]}
    aliases = {alias for _session_id, alias in shown}
    assert len(aliases) == 2 and not aliases & {"alice", "bob"}
    assert all(alias.startswith("driver-") for alias in aliases)
    by_session = dict(shown)  # the same driver has the same pseudonym in every row
    assert by_session["S-1"] == by_session["S-2"] != by_session["S-3"]
    assert "alice" not in json.dumps(body)
    url = f"http://127.0.0.1:{central.http_port}/api/sessions.csv"
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    async with http.session.get(url, headers=headers) as response:
        csv_text = await response.text()
    assert response.status == 200 and "alice" not in csv_text and by_session["S-1"] in csv_text
    for path in ("/api/sessions?driver_id=alice", "/api/sessions.csv?driver_id=alice"):
        status, body = await http.call(central, "GET", path, token=VIEWER_TOKEN)
        assert status == 403 and "operator" in body["error"]  # no probing for a known driver


async def test_a_viewer_stream_redacts_driver_ids_in_tiles_and_log(
    central: Central, fleet: list[str], http
) -> None:
    central.journal.record(
        LogKind.REQUEST, "carol asks for a supply", cp_id=fleet[0], driver_id="carol"
    )
    url = f"http://127.0.0.1:{central.http_port}/api/events"
    headers = {"Authorization": f"Bearer {VIEWER_TOKEN}"}
    async with http.session.get(url, headers=headers) as response:
        assert response.status == 200
        events = _sse(response.content)
        async for kind, data in events:
            if kind == "log" and data["driver_id"]:
                assert data["driver_id"].startswith("driver-")
                assert data["message"] == f"{data['driver_id']} asks for a supply"
                break
    async with http.session.get(url) as response:
        assert response.status == 401
