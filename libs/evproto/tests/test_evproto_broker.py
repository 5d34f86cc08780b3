"""The embedded broker (Tansu): it starts, stops and starts again on the same port."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient
from evproto.broker import EmbeddedBroker
from evproto.kafka import KafkaSettings, broker_reachable
from evproto.topics import Topic


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
        metadata = AdminClient(settings.common()).list_topics(timeout=10)
        assert set(metadata.topics) >= {t.value for t in Topic}
    finally:
        broker.stop()
