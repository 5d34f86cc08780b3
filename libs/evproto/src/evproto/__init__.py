"""evproto: the protocol every EV Charging Network component speaks.

Modules, one concern each:

- ``framing``: bytes <-> frames (``<STX><DATA><ETX><LRC>``, ENQ/ACK/NACK/EOT)
- ``schema`` / ``messages``: frames and Kafka records <-> typed messages
- ``connection`` / ``routing``: the asyncio TCP link and per-type handlers
- ``states`` / ``topics``: CP states, Kafka topics and the one partitioner
- ``kafka`` / ``broker``: Kafka clients and the embedded broker
- ``auth``: challenge-response credentials
- ``proofs``: keys, proofs and sealed records on Kafka (HMAC, AES-GCM)
- ``vocabulary``: error kinds, abort causes and shared limits, defined once
- ``service``: the service kit's ``main()`` and exit codes, built on ``config``
  (settings), ``logs``, ``lifecycle`` and ``metrics``; ``retry`` for what is temporary
"""

# Importing the messages registers every type, so decode_message knows them all.
import evproto.messages  # noqa: F401
from evproto.errors import EvError, ProtocolError
from evproto.schema import Message, MsgType, decode_message, encode_message
from evproto.states import CpState, Health
from evproto.topics import Topic, partition_for

__all__ = [
    "CpState",
    "EvError",
    "Health",
    "Message",
    "MsgType",
    "ProtocolError",
    "Topic",
    "decode_message",
    "encode_message",
    "partition_for",
]

__version__ = "0.1.0"
