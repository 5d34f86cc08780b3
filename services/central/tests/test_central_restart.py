"""A restarted central (same database, same consumer group) keeps CPs, prices, stops and
sessions, reconciles the session in flight from Kafka, and bills it once."""

from __future__ import annotations

import time

from evcentral.records import SessionStatus
from evproto.messages import (
    Directive,
    DirectiveAction,
    DriverUpdate,
    Origin,
    Outcome,
    SupplyRequest,
    SupplyResponse,
    Telemetry,
    Ticket,
)
from evproto.states import CpState
from evproto.topics import Topic


def telemetry(session_id: str, cp_id: str, driver_id: str, seq: int) -> Telemetry:
    return Telemetry(
        session_id=session_id,
        cp_id=cp_id,
        driver_id=driver_id,
        seq=seq,
        kwh=seq * 0.1,
        eur=seq * 0.055,
        power_kw=22.0,
        elapsed_s=float(seq),
        sent_at=time.time(),
    )


async def test_restart_restores_and_reconciles(
    centrals, monitors, peers, http, *, new_id, wait_until
) -> None:
    first = await centrals.start()
    busy, stopped = new_id("CP"), new_id("CP")
    busy_monitor = await monitors.online(first, busy)
    stopped_monitor = await monitors.online(first, stopped, location="Back yard")
    await wait_until(lambda: first.registry.state_of(stopped) is CpState.ACTIVE, what="ACTIVE")
    assert (await http.call(first, "PUT", f"/api/cps/{busy}/price", json={"price": 0.55}))[0] == 200
    assert (await http.call(first, "POST", f"/api/cps/{stopped}/stop"))[0] == 202

    driver_id = new_id("driver")
    engine, driver = await peers.engine(busy), await peers.driver(driver_id)
    request = SupplyRequest(
        request_id=new_id("request"),
        requester_id=driver_id,
        origin=Origin.DRIVER,
        cp_id=busy,
        sent_at=time.time(),
    )
    await driver.publish(Topic.SUPPLY_REQUESTS, busy, request)
    session_id = (await driver.wait_for(SupplyResponse)).session_id
    await engine.wait_for(Directive, action=DirectiveAction.START)
    for seq in (1, 2):
        await engine.publish(Topic.TELEMETRY, busy, telemetry(session_id, busy, driver_id, seq))
    await driver.wait_for(DriverUpdate, seq=2)
    await centrals.stop(first)

    # meanwhile the engine goes on, and finishes the supply
    await engine.publish(Topic.TELEMETRY, busy, telemetry(session_id, busy, driver_id, 3))
    now = time.time()
    ticket = Ticket(
        session_id=session_id,
        cp_id=busy,
        driver_id=driver_id,
        last_seq=3,
        kwh=0.3,
        eur=0.165,
        price=0.55,
        started_at=now - 3,
        ended_at=now,
        outcome=Outcome.COMPLETED,
    )
    second = await centrals.start()
    # CPs, prices and stops came back; every CP is DISCONNECTED until its monitor returns
    cps = {cp.cp_id: cp for cp in second.registry}
    assert {busy, stopped} <= set(cps)
    assert cps[busy].price == 0.55 and cps[stopped].out_of_service
    assert cps[stopped].location == "Back yard"
    assert all(cp.state is CpState.DISCONNECTED for cp in (cps[busy], cps[stopped]))
    restored = second.registry.sessions[session_id]
    assert restored.status is SessionStatus.SUPPLYING and restored.last_seq >= 2

    # the session in flight is reconciled from the telemetry the central missed
    await wait_until(lambda: restored.last_seq == 3, what="telemetry caught up")
    await engine.publish(Topic.TELEMETRY, busy, ticket)
    await engine.publish(Topic.TELEMETRY, busy, ticket)  # a duplicate: billed once
    await wait_until(lambda: not second.registry.sessions, what="the session to end")
    await wait_until(lambda: len(driver.of(Ticket)) >= 1, what="the ticket relayed")
    _status, body = await http.call(second, "GET", f"/api/sessions?driver_id={driver_id}")
    [listed] = body["sessions"]
    assert (listed["status"], listed["outcome"], listed["eur"]) == ("ended", "completed", 0.165)
    revenue = second.metrics.registry.get_sample_value("evcharging_central_revenue_eur_total")
    assert revenue == 0.165

    # the monitors come back with the secrets issued before the restart
    for monitor in (busy_monitor, stopped_monitor):
        await monitor.close()
        again = monitors(monitor.cp_id, second.monitor_port)
        assert (await again.login(monitor.secret)).accepted
        await again.status()
        again.heartbeat()
    await wait_until(lambda: second.registry.state_of(stopped) is CpState.STOPPED, what="STOPPED")
    await wait_until(lambda: second.registry.state_of(busy) is CpState.ACTIVE, what="ACTIVE")
    assert len(driver.of(Ticket)) == 1
