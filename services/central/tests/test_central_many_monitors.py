"""Hundreds of monitors on one event loop: all connected at once, the HTTP side still answers."""

from __future__ import annotations

import asyncio

from evcentral.app import Central
from evcentral.db import Database
from evcentral.records import CpRow
from evproto.auth import new_secret, stored_key
from evproto.connection import FramedConnection
from evproto.states import CpState
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

MONITORS = 500


def preregister(db_path: str, cp_ids: list[str]) -> dict[str, str]:
    """CPs already known to the central (registering 500 over TCP would test nothing more)."""
    db = Database(db_path)
    db.migrate()
    secrets = {cp_id: new_secret() for cp_id in cp_ids}
    with db.transaction():
        for cp_id, secret in secrets.items():
            db.insert_cp(CpRow(cp_id, "Car park", 0.3, False, stored_key(secret), 0.0))
    db.close()
    return secrets


async def test_500_idle_monitors_and_the_http_side_still_answers(
    centrals, monitors, http, tmp_path, wait_until
) -> None:
    cp_ids = [f"LOAD-{i:04d}" for i in range(MONITORS)]
    secrets = preregister(str(tmp_path / "central.db"), cp_ids)
    # slow heartbeats: the monitors stay idle after their first report
    central: Central = await centrals.start(heartbeat_interval=10.0, missed_heartbeats=6)
    gate = asyncio.Semaphore(100)  # how many handshakes the clients run at once

    async def connect(cp_id: str) -> None:
        async with gate:
            monitor = monitors(cp_id, central.monitor_port)
            assert (await monitor.login(secrets[cp_id])).accepted
            await monitor.status()

    await asyncio.gather(*(connect(cp_id) for cp_id in cp_ids))
    await wait_until(lambda: central.registry.connected == MONITORS, 30, "every monitor")
    assert all(central.registry.state_of(cp_id) is CpState.ACTIVE for cp_id in cp_ids)

    assert await http.call(central, "GET", "/healthz") == (200, {"status": "ok"})
    status, body = await http.call(central, "GET", "/api/cps")
    assert status == 200 and len(body["cps"]) == MONITORS
    status, text = await http.call(central, "GET", "/metrics")
    assert status == 200
    assert f"evcharging_central_connected_monitors {float(MONITORS)}" in text
    assert f'evcharging_central_cps{{state="ACTIVE"}} {float(MONITORS)}' in text
    assert all(isinstance(m.conn, FramedConnection) and not m.conn.closed for m in monitors.made)


async def test_a_cp_costs_no_metric_child_and_no_link_dict(
    centrals, monitors, http, tmp_path, wait_until
) -> None:
    """Memory per CP (bench/findings.md): a Prometheus label child per CP held ~0.7 KB
    per CP and gauge, a FramedConnection's __dict__ ~1.6 KB per link. The per-CP
    series are read from the registry when scraped; a link has slots."""
    cp_ids = [f"LOAD-{i:04d}" for i in range(20)]
    secrets = preregister(str(tmp_path / "central.db"), cp_ids)
    central: Central = await centrals.start()
    for cp_id in cp_ids:
        monitor = monitors(cp_id, central.monitor_port)
        assert (await monitor.login(secrets[cp_id])).accepted
        await monitor.status()
    await wait_until(lambda: central.registry.connected == len(cp_ids), 30, "every monitor")

    wrapped = [m for m in vars(central.metrics).values() if isinstance(m, MetricWrapperBase)]
    label_values = {
        value
        for metric in wrapped
        for family in metric.collect()
        for sample in family.samples
        for value in sample.labels.values()
    }
    assert not label_values & set(cp_ids)
    status, text = await http.call(central, "GET", "/metrics")
    assert status == 200
    series = {
        (sample.name, sample.labels.get("cp_id")): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    for cp_id in cp_ids:
        cp = central.registry.get(cp_id)
        assert cp is not None and cp.link is not None
        assert series[("evcharging_central_cp_state", cp_id)] == 0.0  # ACTIVE
        since = series[("evcharging_central_cp_state_since_timestamp_seconds", cp_id)]
        assert since == cp.state_since
        assert not hasattr(cp.link.conn, "__dict__")
