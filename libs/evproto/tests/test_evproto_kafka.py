"""Kafka helpers against the real embedded broker.

The broker is shared by the whole test session, so every test uses its own
keys and consumer group and filters on them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from evproto.errors import BrokerError, InvalidField
from evproto.kafka import (
    ConsumerLoop,
    KafkaSettings,
    PositionFile,
    Publisher,
    Record,
    TopicAdmin,
    broker_reachable,
    create_topics,
)
from evproto.messages import DeadLetter, Directive, DirectiveAction, HealthRequest
from evproto.schema import Message, encode_message
from evproto.topics import Topic, partition_for
from evstack.broker import EmbeddedBroker, free_port
from evstack.kafka_probe import produce_raw
from evstack.waiting import eventually

DEADLINE = 20.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def same_partition_key(key: str, topic: Topic, other: bool = False) -> str:
    """A fresh key on the same partition as ``key`` (or, with ``other``, on another one)."""
    target = partition_for(key, topic.partitions)
    while True:
        candidate = unique("K")
        if (partition_for(candidate, topic.partitions) == target) != other:
            return candidate


def directive(cp_id: str, reason: str = "") -> Directive:
    return Directive(
        directive_id=unique("d"),
        cp_id=cp_id,
        action=DirectiveAction.RESUME,
        reason=reason,
        sent_at=time.time(),
    )


class Collector:
    """A ConsumerLoop handler that keeps what it was given."""

    def __init__(self) -> None:
        self.items: list[tuple[Message, Record]] = []

    async def __call__(self, msg: Message, record: Record) -> None:
        if isinstance(msg, Directive) and msg.reason == "poison-in-handler":
            raise InvalidField("directive", "reason", "refused by the handler")
        self.items.append((msg, record))

    @property
    def keys(self) -> list[str]:
        return [record.key for _msg, record in self.items]

    @property
    def messages(self) -> list[Message]:
        return [msg for msg, _record in self.items]


@asynccontextmanager
async def running(loop: ConsumerLoop) -> AsyncIterator[ConsumerLoop]:
    """Run a consumer loop in the background; stop it (commit, close) on exit."""
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop))
    try:
        yield loop
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)
        await loop.close()


@pytest.fixture
async def publisher(kafka_settings: KafkaSettings) -> AsyncIterator[Publisher]:
    pub = Publisher(kafka_settings)
    await pub.start()
    yield pub
    await pub.close()


def consumer(
    settings: KafkaSettings,
    handler: Collector,
    partitions: dict[Topic, list[int] | None],
    *,
    group: str | None = None,
    keys: frozenset[str] | None = None,
    dead_letters: Publisher | None = None,
    start: str = "earliest",
    positions: PositionFile | None = None,
) -> ConsumerLoop:
    return ConsumerLoop(
        settings,
        group_id=group or unique("g"),
        partitions=partitions,
        handler=handler,
        dead_letters=dead_letters,
        start=start,
        keys=keys,
        positions=positions,
    )


async def test_publisher_delivers_to_the_partition_of_the_key(
    kafka_settings: KafkaSettings, publisher: Publisher
) -> None:
    key = unique("CP")
    sent = directive(key)
    await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, sent), DEADLINE)
    got = Collector()

    # read every partition: the record must be found in the one partition_for names
    loop = consumer(kafka_settings, got, {Topic.DIRECTIVES: None}, keys=frozenset({key}))
    async with running(loop):
        await eventually(lambda: len(got.items) == 1, DEADLINE, "the record")

    msg, record = got.items[0]
    assert msg == sent
    assert record.topic is Topic.DIRECTIVES
    assert record.partition == partition_for(key, Topic.DIRECTIVES.partitions)
    assert record.key == key
    assert publisher.stats.produced[Topic.DIRECTIVES.value] >= 1


async def test_a_loop_reads_only_its_partition_and_only_its_keys(
    kafka_settings: KafkaSettings, publisher: Publisher
) -> None:
    mine = unique("CP")
    neighbour = same_partition_key(mine, Topic.DIRECTIVES)
    elsewhere = same_partition_key(mine, Topic.DIRECTIVES, other=True)
    partition = partition_for(mine, Topic.DIRECTIVES.partitions)
    for key in (mine, elsewhere, neighbour, mine):
        await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, directive(key)), DEADLINE)
    whole_partition, only_mine = Collector(), Collector()
    wanted = frozenset({mine, neighbour, elsewhere})

    loops = (
        consumer(kafka_settings, whole_partition, {Topic.DIRECTIVES: [partition]}),
        consumer(
            kafka_settings, only_mine, {Topic.DIRECTIVES: [partition]}, keys=frozenset({mine})
        ),
    )
    async with running(loops[0]), running(loops[1]):
        await eventually(lambda: only_mine.keys == [mine, mine], DEADLINE, "both records of my key")
        await eventually(
            lambda: [k for k in whole_partition.keys if k in wanted] == [mine, neighbour, mine],
            DEADLINE,
            "the whole partition",
        )

    assert {record.partition for _msg, record in whole_partition.items} == {partition}
    assert elsewhere not in whole_partition.keys


async def test_start_latest_skips_the_past_and_misses_nothing_after_assign(
    kafka_settings: KafkaSettings, publisher: Publisher
) -> None:
    key = unique("D")
    old, new = directive(key, "old"), directive(key, "new")
    await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, old), DEADLINE)
    got = Collector()
    partition = partition_for(key, Topic.DIRECTIVES.partitions)
    loop = consumer(
        kafka_settings, got, {Topic.DIRECTIVES: [partition]}, keys=frozenset({key}), start="latest"
    )

    await loop.assign()
    await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, new), DEADLINE)
    async with running(loop):
        await eventually(lambda: len(got.items) == 1, DEADLINE, "the new record")

    assert got.messages == [new]


async def test_a_new_loop_of_the_same_group_resumes_after_the_last_handled_record(
    kafka_settings: KafkaSettings, publisher: Publisher
) -> None:
    key, group = unique("CP"), unique("central")
    partitions: dict[Topic, list[int] | None] = {
        Topic.DIRECTIVES: [partition_for(key, Topic.DIRECTIVES.partitions)]
    }
    first, second = directive(key, "1"), directive(key, "2")
    for msg in (first, second):
        await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, msg), DEADLINE)
    before = Collector()
    async with running(
        consumer(kafka_settings, before, partitions, group=group, keys=frozenset({key}))
    ):
        await eventually(lambda: len(before.items) == 2, DEADLINE, "the first two records")

    third = directive(key, "3")
    await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, third), DEADLINE)
    after = Collector()
    async with running(
        consumer(kafka_settings, after, partitions, group=group, keys=frozenset({key}))
    ):
        await eventually(lambda: len(after.items) >= 1, DEADLINE, "the record after the restart")

    assert before.messages == [first, second]
    assert after.messages == [third]


async def test_a_loop_with_a_position_file_resumes_from_it_and_commits_nothing(
    kafka_settings: KafkaSettings, publisher: Publisher, tmp_path: Path
) -> None:
    key, group = unique("D"), unique("driver")
    partitions: dict[Topic, list[int] | None] = {
        Topic.DIRECTIVES: [partition_for(key, Topic.DIRECTIVES.partitions)]
    }
    old, first, second = directive(key, "old"), directive(key, "1"), directive(key, "2")
    await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, old), DEADLINE)
    file = PositionFile(tmp_path / "D.offsets")

    def reader(got: Collector) -> ConsumerLoop:
        return consumer(
            kafka_settings,
            got,
            partitions,
            group=group,
            keys=frozenset({key}),
            start="latest",
            positions=PositionFile(file.path),
        )

    idle = reader(Collector())
    await idle.assign()  # stopped before any record: the start is stored all the same
    await idle.close()
    await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, first), DEADLINE)
    before = Collector()
    async with running(reader(before)):
        await eventually(lambda: len(before.items) == 1, DEADLINE, "the record after the start")
    await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, second), DEADLINE)
    after = Collector()
    async with running(reader(after)):
        await eventually(lambda: len(after.items) >= 1, DEADLINE, "the record after the restart")
    from_the_group = Collector()  # the same group without the file: it has no offsets
    whole_group = consumer(
        kafka_settings, from_the_group, partitions, group=group, keys=frozenset({key})
    )
    async with running(whole_group):
        await eventually(lambda: len(from_the_group.items) >= 3, DEADLINE, "all from the start")

    assert before.messages == [first]
    assert after.messages == [second]
    assert from_the_group.messages[:3] == [old, first, second]
    assert file.path is not None and file.path.stat().st_mode & 0o777 == 0o600
    assert list(file.load().values()) == [from_the_group.items[2][1].offset + 1]


def test_an_unusable_position_file_means_no_positions(tmp_path: Path) -> None:
    path = tmp_path / "D.offsets"
    file = PositionFile(path)
    assert file.load() == {}
    file.save({("ev.driver.updates", 3): 7})
    assert PositionFile(path).load() == {("ev.driver.updates", 3): 7}
    for garbage in ("[]", '{"t": {"0": -1}}', '{"t": {"x": 1}}', "{", "x" * 70000):
        path.write_text(garbage)
        assert PositionFile(path).load() == {}


async def test_poison_records_go_to_the_dead_letter_topic_and_the_loop_goes_on(
    kafka_settings: KafkaSettings, publisher: Publisher
) -> None:
    key = unique("CP")
    partition = partition_for(key, Topic.DIRECTIVES.partitions)
    poison = [
        b"{not json",
        encode_message(HealthRequest(seq=1)),  # a valid message, but not for this topic
        encode_message(directive(key)).replace(key.encode(), b"bad id"),
    ]
    produce_raw(kafka_settings, Topic.DIRECTIVES, key, poison)
    refused, good = directive(key, "poison-in-handler"), directive(key, "good")
    for msg in (refused, good):
        await asyncio.wait_for(publisher.publish(Topic.DIRECTIVES, key, msg), DEADLINE)
    handled, letters = Collector(), Collector()

    loop = consumer(
        kafka_settings,
        handled,
        {Topic.DIRECTIVES: [partition]},
        keys=frozenset({key}),
        dead_letters=publisher,
    )
    dead = consumer(kafka_settings, letters, {Topic.DEAD_LETTER: None}, keys=frozenset({key}))
    async with running(loop), running(dead):
        await eventually(lambda: handled.messages == [good], DEADLINE, "the good record")
        await eventually(lambda: len(letters.items) == 4, DEADLINE, "four dead letters")

    reasons = []
    for letter in letters.messages:
        assert isinstance(letter, DeadLetter)
        assert (letter.topic, letter.partition, letter.key) == (
            Topic.DIRECTIVES.value,
            partition,
            key,
        )
        assert letter.consumer == loop.group_id
        reasons.append(letter.reason)
    assert "not UTF-8 JSON" in reasons[0]
    assert "not accepted here" in reasons[1]
    assert "directive.cp_id" in reasons[2]
    assert "refused by the handler" in reasons[3]
    assert letters.messages[0].payload == "{not json"  # type: ignore[attr-defined]
    assert loop.stats.dead_lettered[Topic.DIRECTIVES.value] == 4


async def test_broker_reachable_says_yes_and_no(kafka_settings: KafkaSettings) -> None:
    assert await asyncio.to_thread(broker_reachable, kafka_settings)
    nobody = KafkaSettings(f"127.0.0.1:{free_port()}")
    assert not await asyncio.to_thread(broker_reachable, nobody, 1.0)


def test_create_topics_is_idempotent_with_the_contract_partition_counts(
    kafka_settings: KafkaSettings,
) -> None:
    create_topics(kafka_settings)  # the fixture created them already
    create_topics(kafka_settings)

    counts = TopicAdmin(kafka_settings).partition_counts(timeout=10)
    assert {t.value: counts[t.value] for t in Topic} == {t.value: t.partitions for t in Topic}


async def test_a_loop_stopped_while_its_broker_is_down_does_not_wait_to_commit() -> None:
    """Its last offsets cannot be committed: waiting for that would only eat the drain."""
    broker = EmbeddedBroker()
    await asyncio.to_thread(broker.start)
    try:
        settings = KafkaSettings(broker.bootstrap, client_id=unique("t"))
        key = unique("CP")
        partitions: dict[Topic, list[int] | None] = {
            Topic.DIRECTIVES: [partition_for(key, Topic.DIRECTIVES.partitions)]
        }
        pub = Publisher(settings)
        await pub.start()
        await asyncio.wait_for(pub.publish(Topic.DIRECTIVES, key, directive(key)), DEADLINE)
        await pub.close()
        seen = Collector()
        loop = consumer(settings, seen, partitions, keys=frozenset({key}))
        stop = asyncio.Event()
        task = asyncio.create_task(loop.run(stop))
        await eventually(lambda: len(seen.items) == 1, DEADLINE, "the record handled")
    finally:
        await asyncio.to_thread(broker.stop)
    await eventually(lambda: not loop.stats.broker_up, DEADLINE, "the loop sees the broker gone")

    stop.set()
    await asyncio.wait_for(task, 2.0)  # a commit waiting on a dead broker takes ~6 s
    await loop.close()


async def test_a_redelivering_publisher_produces_again_what_a_long_outage_failed() -> None:
    """A record that times out (``message.timeout.ms``) while the broker is away stays
    pending and is produced again: it reaches the broker once it is back, and it is
    never counted as settled (a consumer committing after its outputs waits for it)."""
    broker = EmbeddedBroker()
    await asyncio.to_thread(broker.start)
    try:
        settings = KafkaSettings(broker.bootstrap, client_id=unique("t"), message_timeout_ms=1000)
        pub = Publisher(settings, redeliver=True, stall_seconds=2.0)
        await pub.start()
        key = unique("CP")
        await asyncio.wait_for(pub.publish(Topic.DIRECTIVES, key, directive(key)), DEADLINE)
        await asyncio.to_thread(broker.stop)
        late = pub.publish(Topic.DIRECTIVES, key, directive(key, "during the outage"))
        await eventually(
            lambda: pub.stats.publish_retries >= 2, DEADLINE, "the delivery failed, twice"
        )
        assert not late.done()
        assert pub.settled_through == pub.published - 1

        await asyncio.to_thread(broker.start)  # empty: the topics are made again
        await asyncio.wait_for(late, 60)
        assert (pub.stats.publish_failures, pub.settled_through) == (0, pub.published)
        await pub.close()
        seen = Collector()
        partition = partition_for(key, Topic.DIRECTIVES.partitions)
        loop = consumer(settings, seen, {Topic.DIRECTIVES: [partition]}, keys=frozenset({key}))
        async with running(loop):
            await eventually(
                lambda: [m.reason for m in seen.messages] == ["during the outage"],  # type: ignore[attr-defined]
                DEADLINE,
                "the record on the topic",
            )
    finally:
        await asyncio.to_thread(broker.stop)


async def test_without_redelivery_a_record_failed_by_an_outage_fails_its_future() -> None:
    broker = EmbeddedBroker()
    await asyncio.to_thread(broker.start)
    await asyncio.to_thread(broker.stop)
    settings = KafkaSettings(broker.bootstrap, client_id=unique("t"), message_timeout_ms=500)
    pub = Publisher(settings)
    await pub.start()
    key = unique("CP")
    with pytest.raises(BrokerError):
        await asyncio.wait_for(pub.publish(Topic.DIRECTIVES, key, directive(key)), DEADLINE)
    assert (pub.stats.publish_failures, pub.settled_through) == (1, pub.published)
    await pub.close(timeout=1.0)
