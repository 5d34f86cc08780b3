"""A restarted central (same database, same consumer group) keeps CPs, prices, stops and
sessions, reconciles the session in flight from Kafka, and bills it once."""

from __future__ import annotations

import pytest
from evcentral.records import SessionStatus
from evproto.messages import (
    Directive,
    DirectiveAction,
    DriverUpdate,
    SupplyResponse,
    Ticket,
)
from evproto.states import CpState
from evproto.topics import Topic


async def test_restart_restores_and_reconciles(
    centrals, monitors, peers, http, *, new_id, wait_until, messages
) -> None:
    build = messages(kwh_per_seq=0.1, price=0.55)
    first = await centrals.start()
    busy, stopped = new_id("CP"), new_id("CP")
    busy_monitor = await monitors.online(first, busy)
    stopped_monitor = await monitors.online(first, stopped, location="Back yard")
    await wait_until(lambda: first.registry.state_of(stopped) is CpState.ACTIVE, what="ACTIVE")
    assert (await http.call(first, "PUT", f"/api/cps/{busy}/price", json={"price": 0.55}))[0] == 200
    assert (await http.call(first, "POST", f"/api/cps/{stopped}/stop"))[0] == 202

    driver_id = new_id("driver")
    engine, driver = await peers.engine(busy), await peers.driver(driver_id)
    await driver.publish(Topic.SUPPLY_REQUESTS, busy, build.request(driver_id, busy))
    session_id = (await driver.wait_for(SupplyResponse)).session_id
    await engine.wait_for(Directive, action=DirectiveAction.START)
    for seq in (1, 2):
        await engine.publish(
            Topic.TELEMETRY, busy, build.telemetry(session_id, busy, driver_id, seq)
        )
    await driver.wait_for(DriverUpdate, seq=2)
    await centrals.stop(first)

    # meanwhile the engine goes on, and finishes the supply
    await engine.publish(Topic.TELEMETRY, busy, build.telemetry(session_id, busy, driver_id, 3))
    ticket = build.ticket(session_id, busy, driver_id, seq=3)
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
    assert (listed["status"], listed["outcome"]) == ("ended", "completed")
    assert listed["eur"] == pytest.approx(0.165)
    revenue = second.metrics.registry.get_sample_value("evcharging_central_revenue_eur_total")
    assert revenue == pytest.approx(0.165)

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
