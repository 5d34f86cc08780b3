"""Kafka topics, their partition counts, and the one partitioner.

Every producer chooses the partition with :func:`partition_for` and every
consumer that wants one key's messages assigns only ``partition_for(key)``:
a driver or an engine reads one partition, not the whole topic.
"""

from __future__ import annotations

import enum
import zlib

__all__ = ["Topic", "partition_for"]


class Topic(enum.StrEnum):
    SUPPLY_REQUESTS = "ev.supply.requests"  # driver/engine -> central, key CP id
    SUPPLY_RESPONSES = "ev.supply.responses"  # central -> requester, key requester id
    DIRECTIVES = "ev.directives"  # central -> engine, key CP id
    TELEMETRY = "ev.supply.telemetry"  # engine -> central, key CP id
    DRIVER_UPDATES = "ev.driver.updates"  # central -> driver, key driver id
    CP_STATE = "ev.cp.state"  # central -> anyone, key CP id (latest state wins)
    DEAD_LETTER = "ev.deadletter"  # poison messages with the reason

    @property
    def partitions(self) -> int:
        return _PARTITIONS[self]


_PARTITIONS = {
    Topic.SUPPLY_REQUESTS: 8,
    Topic.SUPPLY_RESPONSES: 16,
    Topic.DIRECTIVES: 16,
    Topic.TELEMETRY: 16,
    Topic.DRIVER_UPDATES: 16,
    Topic.CP_STATE: 8,
    Topic.DEAD_LETTER: 1,
}


def partition_for(key: str, partitions: int) -> int:
    """Stable key -> partition (CRC-32), the same in every process and language."""
    return zlib.crc32(key.encode("utf-8")) % partitions
