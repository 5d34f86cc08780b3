"""A broker that restarts empty: readiness says so, the central makes its topics again
and republishes every CP's state (drivers list CPs from that topic)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from evcentral.app import Central
from evproto.kafka import KafkaSettings, TopicAdmin
from evproto.messages import CpStateUpdate
from evproto.states import CpState
from evproto.topics import Topic
from evstack.broker import EmbeddedBroker


@pytest.mark.slow
async def test_an_empty_broker_gets_the_topics_and_cp_states_back(
    tmp_path: Path, centrals, monitors, peers, http, *, new_id, wait_until
) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "broker.log")
    await asyncio.to_thread(broker.start)
    try:
        settings = KafkaSettings(broker.bootstrap, client_id="tests")
        centrals.kafka = settings
        central: Central = await centrals.start(kafka=broker.bootstrap, create_topics=True)
        cp_id = new_id("CP")
        await monitors.online(central, cp_id)
        await wait_until(lambda: central.registry.state_of(cp_id) is CpState.ACTIVE, what="ACTIVE")

        await asyncio.to_thread(broker.stop)
        await wait_until(lambda: not central.kafka.broker_ok, 15, "the outage seen")
        status, body = await http.call(central, "GET", "/readyz")
        assert status == 503 and body["broker"] is False

        await asyncio.to_thread(broker.start, create=False)  # the same port, nothing on it
        await wait_until(lambda: central.kafka.broker_ok, 30, "the topics made again")
        topics = TopicAdmin(settings).partition_counts(timeout=5)
        assert {t.value for t in Topic} <= set(topics)
        assert (await http.call(central, "GET", "/readyz"))[0] == 200
        peers.settings = settings
        states = await peers.watcher(Topic.CP_STATE, frozenset({cp_id}), start="earliest")
        await states.wait_for(CpStateUpdate, timeout=20, cp_id=cp_id, state=CpState.ACTIVE)
    finally:
        for running in list(centrals.running):
            await centrals.stop(running)
        await asyncio.to_thread(broker.stop)
