"""The Kafka connection settings of the components that use Kafka, on top of the common ones.

A service's settings dataclass inherits :class:`KafkaOptions` (a
:class:`~evproto.config.ServiceSettings`) to get ``--kafka``
and the ``--kafka-…`` security flags (with their ``EV_…`` variables), their
validation, and :meth:`KafkaOptions.kafka_settings_for`.
"""

from __future__ import annotations

from dataclasses import dataclass

from evproto.config import ServiceSettings, parse_hostport, setting
from evproto.errors import ConfigError
from evproto.kafka.settings import KafkaSettings

__all__ = ["SECURITY_PROTOCOLS", "KafkaOptions"]

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


# Not slotted, as CentralLinkOptions: a service may combine the two (slotted bases conflict).
@dataclass(frozen=True, kw_only=True)
class KafkaOptions(ServiceSettings):
    kafka: str = setting("127.0.0.1:9092", help="Kafka bootstrap HOST:PORT", metavar="HOST:PORT")
    kafka_security_protocol: str = setting(
        "PLAINTEXT", help="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", metavar="PROTOCOL"
    )
    kafka_sasl_mechanism: str = setting("SCRAM-SHA-512", help="SASL mechanism", metavar="MECH")
    kafka_username: str = setting("", help="SASL user name", metavar="USER")
    kafka_password: str = setting("", help="SASL password", secret=True, metavar="PASSWORD")
    kafka_ca_file: str = setting(
        "", help="CA certificate (PEM) that signs the brokers' TLS", metavar="FILE"
    )

    def __post_init__(self) -> None:
        parse_hostport(self.kafka, what="--kafka")
        if self.kafka_security_protocol not in SECURITY_PROTOCOLS:
            raise ConfigError(
                f"--kafka-security-protocol: {self.kafka_security_protocol!r} is not one of "
                + ", ".join(SECURITY_PROTOCOLS)
            )

    def kafka_settings_for(self, client_id: str) -> KafkaSettings:
        return KafkaSettings(
            self.kafka,
            client_id=client_id,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_username,
            sasl_password=self.kafka_password,
            ssl_ca_file=self.kafka_ca_file,
        )
