"""evproto.kafka beyond publish/consume: handler retries, snapshots, lag, BrokerError.

Against the real embedded broker (shared by the session: own keys and groups).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from evproto.errors import BrokerError
from evproto.kafka import (
    ConsumerLoop,
    GroupLag,
    KafkaSettings,
    Publisher,
    Record,
    TopicAdmin,
    key_partitions,
    read_snapshot,
)
from evproto.messages import CpStateUpdate, Directive, DirectiveAction
from evproto.schema import Message
from evproto.states import CpState
from evproto.topics import Topic, partition_for
from evstack.broker import free_port
from evstack.waiting import eventually

DEADLINE = 20.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def nobody() -> KafkaSettings:
    return KafkaSettings(f"127.0.0.1:{free_port()}")


def directive(cp_id: str) -> Directive:
    return Directive(
        directive_id=unique("d"),
        cp_id=cp_id,
        action=DirectiveAction.RESUME,
        reason="",
        sent_at=time.time(),
    )


async def published(settings: KafkaSettings, topic: Topic, key: str, msg: Message) -> None:
    pub = Publisher(settings)
    await pub.start()
    try:
        await asyncio.wait_for(pub.publish(topic, key, msg), DEADLINE)
    finally:
        await pub.close()


def test_key_partitions_is_the_partition_of_the_key_on_each_topic() -> None:
    topics = (Topic.SUPPLY_RESPONSES, Topic.DRIVER_UPDATES)
    assert key_partitions("D-1", topics) == {
        t: [partition_for("D-1", t.partitions)] for t in topics
    }


async def test_a_handler_that_fails_for_a_while_is_retried_not_dead_lettered(
    kafka_settings: KafkaSettings,
) -> None:
    key = unique("CP")
    failures_left = 2
    handled: list[Message] = []

    async def flaky(msg: Message, _record: Record) -> None:
        nonlocal failures_left
        if failures_left:
            failures_left -= 1
            raise TimeoutError("database busy")
        handled.append(msg)

    await published(kafka_settings, Topic.DIRECTIVES, key, directive(key))
    loop = ConsumerLoop(
        kafka_settings,
        group_id=unique("g"),
        partitions=key_partitions(key, [Topic.DIRECTIVES]),
        handler=flaky,
        dead_letters=None,
        keys=frozenset({key}),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await eventually(lambda: len(handled) == 1, DEADLINE, "the record handled at last")
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)
        await loop.close()
    assert failures_left == 0
    assert loop.stats.dead_lettered == {}


def _key_on_another_partition(key: str, topic: Topic) -> str:
    while True:
        other = unique("CP")
        if partition_for(other, topic.partitions) != partition_for(key, topic.partitions):
            return other


async def test_a_record_failing_for_a_while_holds_back_its_partition_only(
    kafka_settings: KafkaSettings,
) -> None:
    """A database locked for one key's record pauses that partition; the others go on,
    and the held records are handled in order, once each, when it passes."""
    held_key = unique("CP")
    free_key = _key_on_another_partition(held_key, Topic.DIRECTIVES)
    first, second, free = directive(held_key), directive(held_key), directive(free_key)
    for key, msg in ((held_key, first), (held_key, second), (free_key, free)):
        await published(kafka_settings, Topic.DIRECTIVES, key, msg)
    locked = True
    tries = 0
    handled: list[Message] = []

    async def handler(msg: Message, _record: Record) -> None:
        nonlocal tries
        if msg == first and locked:
            tries += 1
            raise TimeoutError("database is locked")
        handled.append(msg)

    partitions = {
        Topic.DIRECTIVES: [
            partition_for(k, Topic.DIRECTIVES.partitions) for k in (held_key, free_key)
        ]
    }
    loop = ConsumerLoop(
        kafka_settings,
        group_id=unique("g"),
        partitions=partitions,
        handler=handler,
        dead_letters=None,
        keys=frozenset({held_key, free_key}),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await eventually(lambda: free in handled and tries >= 2, DEADLINE, "the free key handled")
        later = directive(free_key)
        await published(kafka_settings, Topic.DIRECTIVES, free_key, later)
        await eventually(lambda: later in handled, DEADLINE, "the free key goes on")
        assert first not in handled and second not in handled  # held back, in order
        locked = False
        await eventually(lambda: second in handled, DEADLINE, "the held records handled")
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)
        await loop.close()
    assert handled == [free, later, first, second]
    assert loop.stats.dead_lettered == {}


def _directives_of(
    settings: KafkaSettings, group: str, key: str, handler: Any, **options: Any
) -> ConsumerLoop:
    """A consumer of one key's directives for ``group``."""
    return ConsumerLoop(
        settings,
        group_id=group,
        partitions=key_partitions(key, [Topic.DIRECTIVES]),
        handler=handler,
        dead_letters=None,
        keys=frozenset({key}),
        **options,
    )


async def test_a_poison_record_is_dead_lettered_at_once_and_the_next_one_handled(
    kafka_settings: KafkaSettings,
) -> None:
    """A handler error that is not temporary would fail the same way again."""
    key = unique("CP")
    poison, good = directive(key), directive(key)
    for msg in (poison, good):
        await published(kafka_settings, Topic.DIRECTIVES, key, msg)
    handled: list[Message] = []
    attempts: list[float] = []

    async def strict(msg: Message, _record: Record) -> None:
        if msg == poison:
            attempts.append(time.monotonic())
            raise ValueError("surrogates not allowed")
        handled.append(msg)

    loop = ConsumerLoop(
        kafka_settings,
        group_id=unique("g"),
        partitions=key_partitions(key, [Topic.DIRECTIVES]),
        handler=strict,
        dead_letters=None,
        keys=frozenset({key}),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        await eventually(lambda: handled == [good], DEADLINE, "the good record handled")
        handled_at = time.monotonic()
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)
        await loop.close()
    assert len(attempts) == 1 and handled_at - attempts[0] < 1.0
    assert loop.stats.dead_lettered == {Topic.DIRECTIVES.value: 1}


async def test_a_record_still_failing_at_stop_is_left_uncommitted(
    kafka_settings: KafkaSettings,
) -> None:
    key = unique("CP")
    await published(kafka_settings, Topic.DIRECTIVES, key, directive(key))
    group = unique("g")
    tries = 0

    async def disk_full(_msg: Message, _record: Record) -> None:
        nonlocal tries
        tries += 1
        raise OSError(28, "No space left on device")

    def consumer(handler: Any) -> ConsumerLoop:
        return _directives_of(kafka_settings, group, key, handler)

    loop = consumer(disk_full)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    await eventually(lambda: tries >= 3, DEADLINE, "a few retries")
    stop.set()
    await asyncio.wait_for(task, DEADLINE)
    await loop.close()
    assert loop.stats.dead_lettered == {}

    handled: list[Message] = []

    async def healthy(msg: Message, _record: Record) -> None:
        handled.append(msg)

    again = consumer(healthy)  # the disk has room again: the record is still there
    stop = asyncio.Event()
    task = asyncio.create_task(again.run(stop))
    try:
        await eventually(lambda: len(handled) == 1, DEADLINE, "the record read again")
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)
        await again.close()


async def test_a_record_is_committed_only_once_what_its_handler_published_is_stored(
    kafka_settings: KafkaSettings,
) -> None:
    """An answer the broker never confirmed: its cause is read again after a restart."""
    key = unique("CP")
    await published(kafka_settings, Topic.DIRECTIVES, key, directive(key))
    group = unique("g")
    unreachable = Publisher(nobody())  # its records are never confirmed
    await unreachable.start()
    seen: list[Message] = []

    async def answer(msg: Message, _record: Record) -> None:
        seen.append(msg)
        unreachable.publish(Topic.CP_STATE, key, msg)

    def consumer(outputs: Publisher) -> ConsumerLoop:
        return _directives_of(kafka_settings, group, key, answer, outputs=outputs)

    first = consumer(unreachable)
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop))
    await eventually(lambda: len(seen) == 1, DEADLINE, "the record handled")
    stop.set()
    await asyncio.wait_for(task, DEADLINE)
    await first.close()
    await unreachable.close(timeout=0.1)

    confirmed = Publisher(kafka_settings)
    await confirmed.start()
    again = consumer(confirmed)
    stop = asyncio.Event()
    task = asyncio.create_task(again.run(stop))
    try:
        await eventually(lambda: len(seen) == 2, DEADLINE, "the record read again")
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)
        await again.close()
        await confirmed.close()
    assert seen[0] == seen[1]


@dataclass(frozen=True, slots=True)
class _TinyQueue(KafkaSettings):
    def producer(self) -> dict[str, Any]:
        return {**KafkaSettings.producer(self), "queue.buffering.max.messages": 5}


async def test_a_full_producer_queue_is_a_backlog_not_a_stalled_event_loop() -> None:
    publisher = Publisher(_TinyQueue(nobody().bootstrap))
    await publisher.start()
    try:
        began = time.monotonic()
        futures = [
            publisher.publish(Topic.DIRECTIVES, "CP-1", directive("CP-1")) for _ in range(50)
        ]
        assert time.monotonic() - began < 0.5  # nothing waited for the queue
        assert publisher.pending == 50 and not any(f.done() for f in futures)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(publisher.room(), 0.3)  # a consumer would hold off
        assert publisher.settled_through == 0
    finally:
        await publisher.close(timeout=0.1)


async def test_a_snapshot_holds_every_message_of_the_topic(kafka_settings: KafkaSettings) -> None:
    cp_id = unique("CP")
    state = CpStateUpdate(
        cp_id=cp_id, state=CpState.ACTIVE, location="Here", price=0.3, sent_at=time.time()
    )
    await published(kafka_settings, Topic.CP_STATE, cp_id, state)

    snapshot = await read_snapshot(kafka_settings, Topic.CP_STATE, DEADLINE)

    assert state in snapshot.messages


async def test_lag_counts_the_records_a_new_group_has_not_read(
    kafka_settings: KafkaSettings,
) -> None:
    key = unique("CP")
    await published(kafka_settings, Topic.DIRECTIVES, key, directive(key))
    lag = GroupLag(kafka_settings, unique("g"), [Topic.DIRECTIVES])
    try:
        assert (await asyncio.to_thread(lag.read))[Topic.DIRECTIVES.value] >= 1
    finally:
        lag.close()


async def test_an_absent_broker_is_a_broker_error_everywhere() -> None:
    with pytest.raises(BrokerError):
        await read_snapshot(nobody(), Topic.CP_STATE, 2.0)
    with pytest.raises(BrokerError):
        TopicAdmin(nobody()).partition_counts(timeout=1.0)
    lag = GroupLag(nobody(), unique("g"), [Topic.DIRECTIVES])
    try:
        with pytest.raises(BrokerError):
            lag.read()
    finally:
        lag.close()
