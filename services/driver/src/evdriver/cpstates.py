"""The CPs a driver can choose from: a snapshot of the ``ev.cp.state`` topic.

Reads every partition from the beginning up to the high watermark seen at the
start (no group, nothing committed); the latest record per CP id wins.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from evproto.errors import MessageError
from evproto.kafka import KafkaSettings
from evproto.logs import kv
from evproto.messages import CHANNELS, CpStateUpdate
from evproto.schema import decode_message
from evproto.topics import Topic

__all__ = ["CpSnapshot", "read_cp_states", "sort_key"]

log = logging.getLogger("evdriver.cpstates")
_BATCH = 500
_ROUND_TRIP_S = 3.0  # one metadata answer; longer means the broker is out of reach


@dataclasses.dataclass(slots=True)
class CpSnapshot:
    cps: list[CpStateUpdate] = dataclasses.field(default_factory=list)
    skipped: int = 0  # records that were not valid CP states


async def read_cp_states(settings: KafkaSettings, timeout: float) -> CpSnapshot:
    """The latest state of every CP, sorted by id; KafkaException if the broker is out of reach."""
    return await asyncio.to_thread(_read_blocking, settings, timeout)


def _read_blocking(settings: KafkaSettings, timeout: float) -> CpSnapshot:
    deadline = time.monotonic() + timeout
    # A throw-away group id: this reader commits nothing and joins no group.
    consumer = Consumer(settings.consumer(f"evdriver.list.{uuid.uuid4().hex[:12]}"))
    try:
        ends: dict[int, int] = {}
        starts = []
        topic = Topic.CP_STATE.value
        for partition in range(Topic.CP_STATE.partitions):
            tp = TopicPartition(topic, partition)
            low, high = consumer.get_watermark_offsets(tp, timeout=min(_ROUND_TRIP_S, timeout))
            if high > low:
                ends[partition] = high
                starts.append(TopicPartition(topic, partition, OFFSET_BEGINNING))
        if not starts:
            return CpSnapshot()
        consumer.assign(starts)
        latest: dict[str, CpStateUpdate] = {}
        snapshot = CpSnapshot()
        while ends and time.monotonic() < deadline:
            for record in consumer.consume(_BATCH, 0.2):
                if record.error() is not None:
                    continue
                partition, offset = record.partition() or 0, record.offset() or 0
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
                if not _take(record.value() or b"", partition, offset, latest):
                    snapshot.skipped += 1
        if ends:
            raise KafkaException(f"CP states not read to the end within {timeout:g} s")
        snapshot.cps = sorted(latest.values(), key=lambda cp: sort_key(cp.cp_id))
        return snapshot
    finally:
        consumer.close()


def _take(raw: bytes, partition: int, offset: int, latest: dict[str, CpStateUpdate]) -> bool:
    try:
        msg = decode_message(raw, CHANNELS[Topic.CP_STATE])
    except MessageError as exc:
        log.warning("bad CP state skipped %s", kv(partition=partition, offset=offset, error=exc))
        return False
    if not isinstance(msg, CpStateUpdate):
        return False
    latest[msg.cp_id] = msg  # records of one CP share a partition: later offsets win
    return True


def sort_key(cp_id: str) -> list[tuple[int, int | str]]:
    """Natural order: CP-2 before CP-10."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", cp_id)]
