"""`evengine` as a process, started with LocalStack's command line (the chart's):
a test acting as the monitor talks to it over TCP, `evengine ctl` drives it, a
test acting as the central reads its CP's partition."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import urllib.request
from typing import Any

import pytest
from evproto.connection import FramedConnection
from evproto.errors import LinkClosed
from evproto.framing import Control, encode_frame
from evproto.messages import (
    CHANNELS,
    CentralRestored,
    CentralUnreachable,
    EngineInfo,
    ErrorReply,
    HealthAnswer,
    HealthRequest,
    InfoRequest,
    Origin,
    Outcome,
    PriceUpdate,
    RecordKey,
    Status,
    SupplyRequest,
    Telemetry,
    Ticket,
)
from evproto.states import Health
from evproto.topics import Topic
from evstack.broker import free_port
from evstack.localstack import console_script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def monitor_link(port: int) -> FramedConnection:
    return await FramedConnection.connect(
        "127.0.0.1", port, accept=CHANNELS["monitor<-engine"], timeout=5.0
    )


async def give_record_key(engine: Any) -> None:
    """What its monitor does once it holds the CP secret (conftest's central double
    proves directives with this key)."""
    link = await monitor_link(engine.cp.engine_port)
    await link.send(RecordKey(cp_id=engine.cp_id, key=bytes(range(32)).hex()))
    await link.close()


async def ctl(engine: Any, *args: str) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = await asyncio.to_thread(engine.ctl, *args)
    return result


async def test_the_monitor_gets_info_and_health_and_sees_ko_after_ctl_ko(
    engine_process: Any,
) -> None:
    engine = engine_process("--price", "0.35")
    link = await monitor_link(engine.cp.engine_port)
    info = await link.request(InfoRequest())
    location = engine.cp.engine.argv[engine.cp.engine.argv.index("--location") + 1]
    assert info == EngineInfo(cp_id=engine.cp_id, location=location, price=0.35, power_kw=36.0)
    assert await link.request(HealthRequest(seq=1)) == HealthAnswer(
        cp_id=engine.cp_id, seq=1, health=Health.OK
    )

    done = await ctl(engine, "ko")
    assert done.returncode == 0, done.stderr
    assert "health KO" in done.stdout
    answer = await link.request(HealthRequest(seq=2))
    assert isinstance(answer, HealthAnswer)
    assert (answer.seq, answer.health) == (2, Health.KO)
    assert answer.reason

    assert (await ctl(engine, "ok")).returncode == 0
    answer = await link.request(HealthRequest(seq=3))
    assert isinstance(answer, HealthAnswer) and answer.health is Health.OK
    await link.close()


async def test_price_and_central_notices_show_in_the_status(engine_process: Any) -> None:
    engine = engine_process()
    link = await monitor_link(engine.cp.engine_port)
    await link.send(PriceUpdate(cp_id=engine.cp_id, price=0.42))
    await link.send(CentralUnreachable(cp_id=engine.cp_id))
    status = await ctl(engine, "status")
    assert "price:    0.42 €/kWh" in status.stdout
    assert "central:  UNREACHABLE" in status.stdout
    assert "monitor:  connected" in status.stdout
    await link.send(CentralRestored(cp_id=engine.cp_id))
    assert "central:  reachable" in (await ctl(engine, "status")).stdout
    # a notice for another CP is refused with a reason, and changes nothing
    await link.send(PriceUpdate(cp_id="CP-elsewhere", price=0.99))
    refusal = await link.recv(5.0)
    assert isinstance(refusal, ErrorReply) and refusal.code == "wrong_cp"
    assert "0.42 €/kWh" in (await ctl(engine, "status")).stdout
    await link.close()


async def test_garbage_and_unknown_messages_do_not_crash_the_engine(engine_process: Any) -> None:
    engine = engine_process()
    port = engine.cp.engine_port
    # raw garbage instead of a handshake
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\n\r\n\x00\xff" * 50)
    # a handshake, then a frame with a bad LRC, a frame that is not JSON, an oversized burst
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        raw.sendall(Control.ENQ.byte)
        assert raw.recv(1) == Control.ACK.byte
        raw.sendall(b"\x02{}\x03\x00")
        assert raw.recv(1) == Control.NACK.byte
        raw.sendall(encode_frame(b"not json"))
        assert raw.recv(1) == Control.ACK.byte
        reply = raw.recv(4096)
        assert b'"type":"error"' in reply and b"malformed" in reply
    link = await monitor_link(port)
    refused = await link.request(Status(cp_id=engine.cp_id, health=Health.OK))
    assert isinstance(refused, ErrorReply) and refused.code == "unknown_type"
    info = await link.request(InfoRequest())
    assert isinstance(info, EngineInfo) and info.cp_id == engine.cp_id
    await link.close()
    assert engine.cp.engine.alive


async def test_a_new_monitor_connection_replaces_the_old_one(engine_process: Any) -> None:
    engine = engine_process()
    first = await monitor_link(engine.cp.engine_port)
    second = await monitor_link(engine.cp.engine_port)
    with pytest.raises(LinkClosed):
        await first.recv(5.0)
    answer = await second.request(HealthRequest(seq=7))
    assert isinstance(answer, HealthAnswer) and answer.seq == 7
    await second.close()


async def test_ctl_status_and_ctl_without_an_engine(engine_process: Any, short_dir: Any) -> None:
    engine = engine_process()
    status = await ctl(engine, "status")
    assert status.returncode == 0
    lines = status.stdout.splitlines()
    assert f"cp:       {engine.cp_id}" in lines[0]
    assert "state:    ACTIVE (Active)" in lines
    assert "session:  none" in lines
    plug = await ctl(engine, "plug")
    assert plug.returncode == 3
    assert "no authorized supply" in plug.stdout

    nobody = subprocess.run(
        [console_script("evengine"), "ctl", "status"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"EV_CONTROL_SOCKET": str(short_dir / "nobody.sock"), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert nobody.returncode == 1
    assert "no engine listens on" in nobody.stderr and "nobody.sock" in nobody.stderr


async def test_a_supply_shows_in_ctl_status(engine_process: Any, central: Any, probe: Any) -> None:
    engine = engine_process()
    reports = await probe(Topic.TELEMETRY, engine.cp_id)
    await give_record_key(engine)
    await central.start(engine.cp_id, "S-status")
    await reports.wait_for(Telemetry, session_id="S-status", seq=1)
    status = (await ctl(engine, "status")).stdout
    assert "state:    SUPPLYING (Supplying)" in status
    assert "session:  S-status" in status
    assert "energy:   0.01" in status
    unplugged = await ctl(engine, "unplug")
    assert unplugged.returncode == 0 and "completed (vehicle unplugged)" in unplugged.stdout
    ticket = await reports.wait_for(Ticket, session_id="S-status")
    assert (ticket.outcome, ticket.reason) == (Outcome.COMPLETED, "vehicle unplugged")


async def test_manual_supply_gives_up_after_the_manual_timeout(
    engine_process: Any, probe: Any
) -> None:
    engine = engine_process("--manual-timeout", "2")
    requests = await probe(Topic.SUPPLY_REQUESTS, engine.cp_id)
    result = await ctl(engine, "supply")
    request = await requests.wait_for(SupplyRequest)
    assert (request.origin, request.requester_id, request.cp_id) == (
        Origin.MANUAL,
        engine.cp_id,
        engine.cp_id,
    )
    assert result.returncode == 3
    assert "no start directive from the central within 2 s; gave up" in result.stdout
    assert "gave up" in engine.log()


async def test_sigterm_during_a_supply_publishes_an_aborted_ticket_and_exits_0(
    engine_process: Any, central: Any, probe: Any
) -> None:
    engine = engine_process()
    reports = await probe(Topic.TELEMETRY, engine.cp_id)
    await give_record_key(engine)
    await central.start(engine.cp_id, "S-term")
    await reports.wait_for(Telemetry, session_id="S-term", seq=1)
    code = await asyncio.to_thread(engine.cp.engine.stop)
    assert code == 0, engine.log()
    ticket = await reports.wait_for(Ticket, session_id="S-term")
    assert (ticket.outcome, ticket.reason) == (Outcome.ABORTED, "charging point shut down")
    assert ticket.kwh == reports.of(Telemetry)[-1].kwh


def test_metrics_are_served(engine_process: Any) -> None:
    port = free_port()
    engine = engine_process("--metrics", f"127.0.0.1:{port}")
    engine.ctl("ko")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for line in (
        "evcharging_engine_supplying 0.0",
        "evcharging_engine_health_ko 1.0",
        "evcharging_engine_power_kw 0.0",
        "evcharging_engine_session_energy_kwh 0.0",
        'evcharging_engine_sessions_total{outcome="completed"} 0.0',
        "evcharging_engine_telemetry_publish_failures_total 0.0",
        'evcharging_engine_directives_total{action="start"} 0.0',
        'evcharging_engine_protocol_errors_total{kind="handshake"} 0.0',
    ):
        assert line in text


def test_bad_settings_exit_2_with_a_clear_message() -> None:
    for args, message in (
        ([], "--cp-id is required"),
        (["--cp-id", "CP 1"], "--cp-id: 'CP 1'"),
        (["--cp-id", "CP-1", "--price", "cheap"], "--price 'cheap' is not a number"),
        (["--cp-id", "CP-1", "--plug-delay", "-5"], "--plug-delay"),
        (["--cp-id", "CP-1", "--console", "maybe"], "--console: 'maybe'"),
    ):
        result = subprocess.run(
            [console_script("evengine"), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr
