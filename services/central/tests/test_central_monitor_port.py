"""The monitor port over real TCP: authentication, registration, health, and bad input."""

from __future__ import annotations

import asyncio
import json

from evcentral.app import Central
from evproto.connection import FramedConnection
from evproto.framing import Control, encode_frame, lrc
from evproto.messages import CHANNELS, Authenticate, ErrorReply, PriceUpdate, Status
from evproto.states import CpState, Health


def cp_state(central: Central, cp_id: str) -> CpState | None:
    return central.registry.state_of(cp_id)


def errors(central: Central, kind: str) -> float:
    value = central.metrics.registry.get_sample_value(
        "evcharging_central_protocol_errors_total", {"kind": kind}
    )
    return value or 0.0


async def raw_link(central: Central) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A hand-made client: TCP, ENQ, ACK; then the test writes whatever bytes it wants."""
    reader, writer = await asyncio.open_connection("127.0.0.1", central.monitor_port)
    writer.write(Control.ENQ.byte)
    assert await asyncio.wait_for(reader.readexactly(1), 5) == Control.ACK.byte
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> dict:
    data = await asyncio.wait_for(reader.readuntil(b"\x03"), 5)
    await asyncio.wait_for(reader.readexactly(1), 5)  # LRC
    return json.loads(data[data.index(b"\x02") + 1 : -1])


async def test_registration_then_login_with_the_issued_secret(
    central: Central, monitors, new_id, wait_until
) -> None:
    cp_id = new_id("CP")
    first = monitors(cp_id, central.monitor_port)
    result = await first.register(location="Plaza 3", price=0.41)
    assert result.accepted and result.price == 0.41 and first.secret
    # the central names the heartbeat interval its monitors report at
    assert result.status_interval == central.settings.heartbeat_interval
    await first.status(Health.OK)
    await wait_until(lambda: cp_state(central, cp_id) is CpState.ACTIVE, what="ACTIVE")
    assert central.registry.cps[cp_id].location == "Plaza 3"

    second = monitors(cp_id, central.monitor_port)
    assert (await second.login(first.secret)).accepted
    await second.status(Health.OK)
    # the new link replaces the old one, which the central closes
    await wait_until(lambda: first.conn.closed, what="the old link to close")
    assert cp_state(central, cp_id) is CpState.ACTIVE


async def test_a_wrong_secret_is_refused_and_counted(
    central: Central, monitors, new_id, wait_until
) -> None:
    cp_id = new_id("CP")
    await monitors(cp_id, central.monitor_port).register()
    intruder = monitors(cp_id, central.monitor_port)
    result = await intruder.login("00" * 32)
    assert not result.accepted and result.reason == "wrong credentials for this charging point"
    assert result.status_interval is None
    assert errors(central, "auth_failed") == 1
    await wait_until(lambda: intruder.conn.closed, what="the central to close the intruder")
    assert cp_state(central, cp_id) is CpState.ACTIVE  # the CP's own link is untouched


async def test_registration_needs_the_token(central: Central, monitors, new_id) -> None:
    cp_id = new_id("CP")
    result = await monitors(cp_id, central.monitor_port).register(token="not-it")
    assert not result.accepted and "token" in result.reason
    assert cp_state(central, cp_id) is None


def refused(central: Central, reason: str) -> float:
    value = central.metrics.registry.get_sample_value(
        "evcharging_central_access_refused_total", {"door": "registration", "reason": reason}
    )
    return value or 0.0


async def test_the_registration_token_cannot_take_over_a_known_cp(
    central: Central, monitors, new_id, wait_until
) -> None:
    cp_id = new_id("CP")
    real = await monitors.online(central, cp_id, location="Depot 1")
    await wait_until(lambda: cp_state(central, cp_id) is CpState.ACTIVE, what="ACTIVE")
    impostor = monitors(cp_id, central.monitor_port)
    result = await impostor.register(location="Elsewhere")
    assert not result.accepted and "already registered" in result.reason
    await wait_until(lambda: impostor.conn.closed, what="the central to close the impostor")
    assert refused(central, "known_cp") == 1
    security = [e for e in central.journal.recent if e.kind.value == "security"]
    assert [(e.cp_id, "127.0.0.1" in e.message) for e in security] == [(cp_id, True)]
    # the real monitor's link is untouched and its secret still works
    assert not real.conn.closed and cp_state(central, cp_id) is CpState.ACTIVE
    assert central.registry.cps[cp_id].location == "Depot 1"
    assert (await monitors(cp_id, central.monitor_port).login(real.secret)).accepted


async def test_an_operator_reset_drops_the_link_and_lets_the_token_re_key_the_cp(
    central: Central, monitors, new_id, wait_until, http
) -> None:
    cp_id = new_id("CP")
    old = await monitors.online(central, cp_id, price=0.44)
    status, _body = await http.call(central, "POST", f"/api/cps/{cp_id}/reset", token="view-token")
    assert status == 403  # a viewer cannot
    status, body = await http.call(central, "POST", f"/api/cps/{cp_id}/reset")
    assert status == 202 and body["cp_id"] == cp_id
    await wait_until(lambda: old.conn.closed, what="the reset to drop the CP's link")
    await wait_until(lambda: cp_state(central, cp_id) is CpState.DISCONNECTED, what="DISCONNECTED")
    assert not (await monitors(cp_id, central.monitor_port).login(old.secret)).accepted
    fresh = monitors(cp_id, central.monitor_port)
    result = await fresh.register(location="Depot 2")
    assert result.accepted and result.price == 0.44 and fresh.secret != old.secret
    await fresh.status(Health.OK)
    await wait_until(lambda: cp_state(central, cp_id) is CpState.ACTIVE, what="ACTIVE again")
    messages = [e.message for e in central.journal.recent]
    assert any(f"credentials of {cp_id} reset by the operator" in m for m in messages)
    assert f"{cp_id} connected (registered from 127.0.0.1)" in messages


async def test_registrations_over_the_rate_are_refused(
    centrals, monitors, new_id, wait_until
) -> None:
    central: Central = await centrals.start(registration_burst=2, registration_rate=1)
    for _ in range(2):
        assert (await monitors(new_id("CP"), central.monitor_port).register()).accepted
    cp_id = new_id("CP")
    result = await monitors(cp_id, central.monitor_port).register()
    assert not result.accepted and "too many registrations" in result.reason
    assert refused(central, "rate_limited") == 1 and cp_state(central, cp_id) is None


async def test_a_message_before_authentication_is_refused_and_closed(
    central: Central, new_id, wait_until
) -> None:
    conn = await FramedConnection.connect(
        "127.0.0.1", central.monitor_port, accept=CHANNELS["monitor<-central"]
    )
    reply = await conn.request(Status(cp_id=new_id("CP"), health=Health.OK))
    assert isinstance(reply, ErrorReply) and reply.code == "not_authenticated"
    await wait_until(lambda: conn.closed, what="the central to close the link")
    assert errors(central, "not_authenticated") == 1


async def test_health_reports_drive_the_state(central: Central, monitors, new_id, wait_until):
    cp_id = new_id("CP")
    monitor = await monitors.online(central, cp_id)
    await wait_until(lambda: cp_state(central, cp_id) is CpState.ACTIVE, what="ACTIVE")
    monitor.health = Health.KO
    await monitor.status(Health.KO, "relay stuck")
    await wait_until(lambda: cp_state(central, cp_id) is CpState.BROKEN_DOWN, what="BROKEN_DOWN")
    await monitor.status(Health.OK)
    await wait_until(lambda: cp_state(central, cp_id) is CpState.ACTIVE, what="ACTIVE again")


async def test_silence_disconnects_the_cp(central: Central, monitors, new_id, wait_until) -> None:
    cp_id = new_id("CP")
    monitor = monitors(cp_id, central.monitor_port)
    assert (await monitor.register()).accepted
    await monitor.status(Health.OK)
    await wait_until(lambda: cp_state(central, cp_id) is CpState.ACTIVE, what="ACTIVE")
    # no more heartbeats: DISCONNECTED after missed_heartbeats x interval (2 s here)
    await wait_until(lambda: cp_state(central, cp_id) is CpState.DISCONNECTED, 6, "DISCONNECTED")
    await wait_until(lambda: errors(central, "idle_timeout") >= 1, what="idle counted")


async def test_a_dropped_link_disconnects_the_cp(central: Central, monitors, new_id, wait_until):
    cp_id = new_id("CP")
    monitor = await monitors.online(central, cp_id)
    await wait_until(lambda: cp_state(central, cp_id) is CpState.ACTIVE, what="ACTIVE")
    await monitor.close()
    await wait_until(lambda: cp_state(central, cp_id) is CpState.DISCONNECTED, what="DISCONNECTED")


async def test_a_price_change_is_pushed_to_the_monitor(
    central: Central, monitors, new_id, http, wait_until
) -> None:
    cp_id = new_id("CP")
    monitor = await monitors.online(central, cp_id)
    status, body = await http.call(central, "PUT", f"/api/cps/{cp_id}/price", json={"price": 0.77})
    assert status == 200 and body["price"] == 0.77
    pushed = await monitor.recv(5)
    assert isinstance(pushed, PriceUpdate) and (pushed.cp_id, pushed.price) == (cp_id, 0.77)


async def test_bad_frames_are_answered_counted_and_survived(
    central: Central, monitors, new_id, wait_until
) -> None:
    reader, writer = await raw_link(central)
    # a frame whose LRC is wrong is NACKed
    data = b'{"type":"authenticate","cp_id":"CP-x"}'
    writer.write(b"\x02" + data + b"\x03" + bytes(((lrc(data) ^ 0xFF),)))
    assert await asyncio.wait_for(reader.readexactly(1), 5) == Control.NACK.byte
    # a valid frame that is not JSON: ACK, then an ErrorReply, and the link stays open
    writer.write(encode_frame(b"this is not json"))
    assert await asyncio.wait_for(reader.readexactly(1), 5) == Control.ACK.byte
    reply = await read_frame(reader)
    assert reply["type"] == "error" and reply["code"] == "malformed"
    writer.write(Control.ACK.byte)
    # an unknown message type
    writer.write(encode_frame(b'{"type":"bogus"}'))
    assert await asyncio.wait_for(reader.readexactly(1), 5) == Control.ACK.byte
    reply = await read_frame(reader)
    assert reply["code"] == "unknown_type"
    writer.write(Control.ACK.byte)
    writer.close()
    assert errors(central, "bad_lrc") == 1
    assert errors(central, "malformed") == 1 and errors(central, "unknown_type") == 1

    # an oversized frame closes that link only
    reader, writer = await raw_link(central)
    writer.write(b"\x02" + b"x" * (70 * 1024))
    assert await asyncio.wait_for(reader.read(), 5) == b""  # EOF: the central closed it
    await wait_until(lambda: errors(central, "frame_too_large") == 1, what="oversize counted")

    # the central still serves monitors
    cp_id = new_id("CP")
    await monitors.online(central, cp_id)
    await wait_until(lambda: cp_state(central, cp_id) is CpState.ACTIVE, what="ACTIVE")


async def test_a_silent_client_is_dropped_after_the_handshake_timeout(
    central: Central, wait_until
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", central.monitor_port)
    assert await asyncio.wait_for(reader.read(), 8) == b""  # closed by the central
    writer.close()
    await wait_until(lambda: errors(central, "handshake_timeout") == 1, what="timeout counted")


async def test_an_authenticated_link_answers_bad_input_and_keeps_serving(
    central: Central, monitors, new_id, wait_until
) -> None:
    """After login each message goes straight to the central's handlers as it is decoded."""
    cp_id = new_id("CP")
    monitor = monitors(cp_id, central.monitor_port)
    assert (await monitor.register()).accepted
    assert monitor.conn is not None
    transport = monitor.conn.transport
    assert transport is not None

    transport.write(encode_frame(b"this is not json"))  # past the client's encoder
    reply = await monitor.recv()
    assert isinstance(reply, ErrorReply) and reply.code == "malformed"

    await monitor.conn.send(Status(cp_id="CP-someone-else", health=Health.OK))
    reply = await monitor.recv()
    assert isinstance(reply, ErrorReply) and reply.code == "wrong_cp"

    await monitor.conn.send(Authenticate(cp_id=cp_id))
    reply = await monitor.recv()
    assert isinstance(reply, ErrorReply) and reply.code == "unexpected_message"
    assert errors(central, "unexpected_message") == 2

    await monitor.status(Health.KO, "breaker tripped")
    await wait_until(lambda: cp_state(central, cp_id) is CpState.BROKEN_DOWN, what="KO seen")
    assert not monitor.conn.closed
