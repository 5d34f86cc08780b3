"""How to reach the broker (:class:`KafkaSettings`) and the counters a client keeps."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

__all__ = ["KafkaSettings", "KafkaStats"]


@dataclass(frozen=True, slots=True)
class KafkaSettings:
    """How to reach the broker. Security fields are empty for a plaintext broker."""

    bootstrap: str
    client_id: str = "evcharging"
    security_protocol: str = "PLAINTEXT"  # or SSL, SASL_PLAINTEXT, SASL_SSL
    sasl_mechanism: str = "SCRAM-SHA-512"
    sasl_username: str = ""
    sasl_password: str = ""
    ssl_ca_file: str = ""
    # Small session timeout: consumer groups form in seconds on the embedded broker.
    session_timeout_ms: int = 6000
    # How long librdkafka retries a record through an outage before reporting it failed.
    message_timeout_ms: int = 600_000

    def common(self) -> dict[str, Any]:
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap,
            "client.id": self.client_id,
            "security.protocol": self.security_protocol,
            "socket.connection.setup.timeout.ms": 5000,
            "reconnect.backoff.ms": 200,
            "reconnect.backoff.max.ms": 5000,
            # librdkafka logs through Python logging (one format, one place to
            # silence it) instead of printing on stderr by itself.
            "logger": logging.getLogger("librdkafka"),
        }
        if self.security_protocol.startswith("SASL"):
            conf.update(
                {
                    "sasl.mechanism": self.sasl_mechanism,
                    "sasl.username": self.sasl_username,
                    "sasl.password": self.sasl_password,
                }
            )
        if self.ssl_ca_file:
            conf["ssl.ca.location"] = self.ssl_ca_file
        return conf

    def producer(self) -> dict[str, Any]:
        return {
            **self.common(),
            "enable.idempotence": True,
            "acks": "all",
            # Topics are made with their partition counts (create_topics, or Strimzi).
            # A producer asking for a missing one must not have the broker create it
            # with its default count: partition_for would then point past its end.
            "allow.auto.create.topics": False,
            "linger.ms": 2,
            # Keep retrying through a broker outage for up to 10 minutes; a record
            # that still fails is reported to the caller, who keeps it (or, with
            # Publisher(redeliver=True), produced again).
            "message.timeout.ms": self.message_timeout_ms,
        }

    def consumer(self, group_id: str) -> dict[str, Any]:
        return {
            **self.common(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": self.session_timeout_ms,
            "heartbeat.interval.ms": max(500, self.session_timeout_ms // 3),
            "fetch.wait.max.ms": 50,
            "enable.partition.eof": False,
        }


@dataclass(slots=True)
class KafkaStats:
    """Counters a service exports as metrics; plain ints so evproto stays metric-agnostic."""

    produced: dict[str, int] = field(default_factory=dict)
    consumed: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    publish_failures: int = 0
    publish_retries: int = 0  # deliveries that failed and were produced again (redeliver)
    broker_errors: int = 0
    broker_up: bool = False

    @staticmethod
    def bump(counter: dict[str, int], topic: str) -> None:
        counter[topic] = counter.get(topic, 0) + 1
