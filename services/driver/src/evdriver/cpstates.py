"""The CPs a driver can choose from: a snapshot of the ``ev.cp.state`` topic.

Reads every partition from the beginning up to the high watermark seen at the
start (no group, nothing committed); the latest record per CP id wins.
"""

from __future__ import annotations

import dataclasses
import re

from evproto.kafka import KafkaSettings, read_snapshot
from evproto.messages import CpStateUpdate
from evproto.topics import Topic

__all__ = ["CpSnapshot", "read_cp_states", "sort_key"]


@dataclasses.dataclass(slots=True)
class CpSnapshot:
    cps: list[CpStateUpdate] = dataclasses.field(default_factory=list)
    skipped: int = 0  # records that were not valid CP states


async def read_cp_states(settings: KafkaSettings, timeout: float) -> CpSnapshot:
    """The latest state of every CP, sorted by id; BrokerError if the broker is out of reach."""
    read = await read_snapshot(settings, Topic.CP_STATE, timeout, reader="evdriver.list")
    latest: dict[str, CpStateUpdate] = {}
    for msg in read.messages:
        assert isinstance(msg, CpStateUpdate)  # the only type the topic accepts
        latest[msg.cp_id] = msg  # records of one CP share a partition: later offsets win
    cps = sorted(latest.values(), key=lambda cp: sort_key(cp.cp_id))
    return CpSnapshot(cps=cps, skipped=read.skipped)


def sort_key(cp_id: str) -> list[tuple[int, int | str]]:
    """Natural order: CP-2 before CP-10."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", cp_id)]
