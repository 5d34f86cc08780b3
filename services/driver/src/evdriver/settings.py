"""The driver's settings: flags, ``EV_…`` variables or the YAML file (evproto.config)."""

from __future__ import annotations

import dataclasses

from evproto.config import setting
from evproto.kafka import KafkaSettings

__all__ = ["DriverSettings"]


@dataclasses.dataclass(frozen=True, slots=True)
class DriverSettings:
    id: str = setting("", help="this driver's id (required; letters, digits or ._:@-)")
    kafka: str = setting("127.0.0.1:9092", help="Kafka bootstrap HOST:PORT", metavar="HOST:PORT")
    state_dir: str = setting(
        ".evdriver", help="keeps <id>.json: the current or last session", metavar="DIR"
    )
    answer_timeout: float = setting(
        30.0, help="seconds to wait for the central's answer to a request", metavar="S"
    )
    stop_wait: float = setting(
        10.0, help="seconds to wait for the ticket after asking to stop a supply", metavar="S"
    )
    connect_attempts: int = setting(
        4, help="tries to reach the broker (exponential back-off) before giving up", metavar="N"
    )
    json: bool = setting(False, help="print one JSON object per event instead of text")
    metrics: str = setting(
        "", help="HOST:PORT to serve /metrics on (idle, batch, interactive)", metavar="HOST:PORT"
    )
    kafka_security_protocol: str = setting(
        "PLAINTEXT", help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"
    )
    kafka_sasl_mechanism: str = setting("SCRAM-SHA-512", help="SASL mechanism")
    kafka_username: str = setting("", help="SASL user name")
    kafka_password: str = setting("", help="SASL password", secret=True)
    kafka_ca_file: str = setting(
        "", help="CA certificate (PEM) for the broker's TLS", metavar="FILE"
    )
    log_level: str = setting("WARNING", help="log level of the diagnostics on stderr")

    def kafka_settings(self) -> KafkaSettings:
        return KafkaSettings(
            bootstrap=self.kafka,
            client_id=f"evdriver.{self.id}",
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_username,
            sasl_password=self.kafka_password,
            ssl_ca_file=self.kafka_ca_file,
        )
