"""The embedded broker (Tansu): it starts, stops and starts again on the same port."""

from __future__ import annotations

from evproto.kafka import KafkaSettings, TopicAdmin, broker_reachable
from evproto.topics import Topic
from evstack.broker import EmbeddedBroker


def test_the_embedded_broker_restarts_on_the_same_port() -> None:
    broker = EmbeddedBroker()
    settings = KafkaSettings(broker.bootstrap)
    try:
        broker.start()
        assert broker.running and broker_reachable(settings)
        port = broker.port

        broker.stop()
        assert not broker.running
        assert not broker_reachable(settings, timeout=0.5)

        broker.start()  # the broker-outage tests need this
        assert broker.port == port
        assert broker_reachable(settings)
        topics = TopicAdmin(settings).partition_counts(timeout=10)
        assert set(topics) >= {t.value for t in Topic}
    finally:
        broker.stop()


async def test_a_publisher_delivers_across_a_broker_restart() -> None:
    """A broker that restarts empty forgets our producer id; the publisher recovers
    and delivers both the record held during the outage and new ones."""
    import asyncio
    import time

    from evproto.kafka import Publisher
    from evproto.messages import CpStateUpdate
    from evproto.states import CpState

    broker = EmbeddedBroker()
    update = CpStateUpdate(cp_id="CP-R5", state=CpState.ACTIVE, sent_at=time.time())
    try:
        broker.start()
        publisher = Publisher(KafkaSettings(broker.bootstrap), stall_seconds=2.0)
        await publisher.start()
        await asyncio.wait_for(publisher.publish(Topic.CP_STATE, "CP-R5", update), 15)

        await asyncio.to_thread(broker.stop)
        held = publisher.publish(Topic.CP_STATE, "CP-R5", update)
        await asyncio.to_thread(broker.start)

        await asyncio.wait_for(held, 30)
        await asyncio.wait_for(publisher.publish(Topic.CP_STATE, "CP-R5", update), 15)
        assert publisher.pending == 0
        await publisher.close()
    finally:
        broker.stop()
