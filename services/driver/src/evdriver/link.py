"""The driver's Kafka link: a publisher, and a consumer of its own partitions only.

The driver reads ``partition_for(driver id)`` of ``ev.supply.responses`` and
``ev.driver.updates`` and, of those, only records keyed by its id. Its read
positions live in ``<state-dir>/<id>.offsets`` (0600), stored only after the
watcher has acknowledged a message (saved it in the state file and shown it): a
driver killed before that gets the message again when it restarts. Drivers never
commit to a Kafka consumer group, so nobody can move a driver's offsets.

Trust (evproto.proofs): what the central sends the driver is sealed with the
driver's key; a record that does not open, or comes unsealed, is refused and
dead-lettered, never shown. Requests and stops go out proven with the driver's
request key.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from pathlib import Path

from evproto.errors import BrokerError, EvError, ProofError
from evproto.kafka import (
    ConsumerLoop,
    KafkaSettings,
    KafkaStats,
    PositionFile,
    Publisher,
    Record,
    key_partitions,
)
from evproto.logs import kv
from evproto.messages import CHANNELS, EnrollResponse, Sealed, SupplyRequest, SupplyStop
from evproto.proofs import Purpose, Signer, derive_key, open_sealed, prove
from evproto.retry import peer_retry
from evproto.schema import Message, new_id
from evproto.topics import Topic
from evproto.vocabulary import Channel

__all__ = ["BrokerUnavailable", "DriverLink", "Inbound"]

log = logging.getLogger("evdriver.link")
_INBOUND_TOPICS = (Topic.SUPPLY_RESPONSES, Topic.DRIVER_UPDATES)
_ATTEMPT_TIMEOUT = 3.0  # seconds one broker round trip may take before it counts as failed


class BrokerUnavailable(EvError):
    code = "broker_unreachable"
    default_message = "the Kafka broker is unreachable"


@dataclasses.dataclass(slots=True)
class Inbound:
    """One message for this driver; :meth:`ack` lets its position be stored."""

    msg: Message
    record: Record
    done: asyncio.Future[None]

    def ack(self) -> None:
        if not self.done.done():
            self.done.set_result(None)


class DriverLink:
    """Open with :meth:`open`; read with :meth:`get`; publish; :meth:`close` at the end."""

    def __init__(
        self,
        settings: KafkaSettings,
        driver_id: str,
        key: bytes | None,
        *,
        state_dir: Path | None,
        connect_attempts: int = 4,
    ) -> None:
        """``key`` is the driver's root key; None only to enroll (positions kept in
        memory). ``state_dir`` holds ``<id>.offsets`` (None: in memory only)."""
        self.driver_id = driver_id
        self._key = key
        # librdkafka wants a group id; nothing is ever committed to it or joined
        self.group_id = f"evdriver.{driver_id}.{new_id()[:12]}"
        self._positions = PositionFile(
            state_dir / f"{driver_id}.offsets" if state_dir is not None and key else None
        )
        self.bootstrap = settings.bootstrap
        self.stats = KafkaStats()
        self._settings = settings
        self._partitions = key_partitions(driver_id, _INBOUND_TOPICS)
        self._attempts = max(1, connect_attempts)
        self._queue: asyncio.Queue[Inbound] = asyncio.Queue()
        self._pending: set[asyncio.Future[None]] = set()
        self._stop = asyncio.Event()
        # Made once the broker has answered, so an unreachable one is reported once, in words.
        self._publisher: Publisher | None = None
        self._consumer: ConsumerLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Reach the broker (retrying with back-off) and start reading; BrokerUnavailable if not."""
        try:
            async for attempt in peer_retry("broker", attempts=self._attempts, cap=5.0, log=log):
                with attempt:
                    # the start positions are stored at assignment: a first-time driver
                    # killed before its first message was shown restarts there
                    consumer = self._make_clients()
                    await consumer.assign(timeout=_ATTEMPT_TIMEOUT)
        except BrokerError as exc:
            raise BrokerUnavailable(exc.message) from None
        assert self._publisher is not None
        await self._publisher.start()
        self._task = asyncio.create_task(consumer.run(self._stop), name="driver-inbound")

    def _make_clients(self) -> ConsumerLoop:
        if self._consumer is None:
            self._publisher = Publisher(self._settings, self.stats)
            self._consumer = ConsumerLoop(
                self._settings,
                group_id=self.group_id,
                partitions=self._partitions,
                handler=self._deliver,
                dead_letters=self._publisher,
                start="latest",
                keys=frozenset({self.driver_id}),
                stats=self.stats,
                positions=self._positions,
            )
        return self._consumer

    def _opened(self, msg: Message, topic: Topic) -> Message:
        """What the central sealed for this driver; ProofError for anything else."""
        if isinstance(msg, EnrollResponse):
            return msg  # the secret inside is sealed to the enrolling key pair
        if not isinstance(msg, Sealed):
            raise ProofError(f"{msg.TYPE.value} came unsealed: not from the central")
        assert self._key is not None
        return open_sealed(msg, self._key, topic, CHANNELS[Channel.DRIVER_SEALED])

    async def _deliver(self, msg: Message, record: Record) -> None:
        if self._stop.is_set():
            raise asyncio.CancelledError  # closing: leave this batch unstored
        if self._key is None and not isinstance(msg, EnrollResponse):
            return  # enrolling: another instance's records are none of this link's business
        if self._key is not None and isinstance(msg, EnrollResponse):
            # a late or repeated answer (a retried enrollment; the central answers a
            # replayed request again): the credential is already kept, nothing to show
            log.debug("enrollment answer ignored %s", kv(driver=self.driver_id))
            return
        try:
            msg = self._opened(msg, record.topic)
        except ProofError as exc:
            log.warning("refused %s", kv(driver=self.driver_id, reason=exc.message))
            raise  # dead-lettered with the reason, never shown
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.add(done)
        try:
            await self._queue.put(Inbound(msg, record, done))
            await done  # cancelled by close(): the batch is then not stored
        finally:
            self._pending.discard(done)

    async def get(self) -> Inbound:
        """The next message for this driver (cancelling the wait loses nothing)."""
        return await self._queue.get()

    async def publish(self, topic: Topic, key: str, msg: Message, timeout: float) -> None:
        """Publish and wait for the broker's acknowledgement, or BrokerUnavailable."""
        assert self._publisher is not None, "publish() before open()"
        if isinstance(msg, SupplyRequest | SupplyStop) and self._key is not None:
            msg = prove(msg, derive_key(self._key, Purpose.DRIVER_REQUESTS), Signer.DRIVER)
        try:
            await asyncio.wait_for(self._publisher.publish(topic, key, msg), timeout)
        except TimeoutError:
            raise BrokerUnavailable(f"no acknowledgement within {timeout:g} s") from None
        except BrokerError as exc:
            raise BrokerUnavailable(exc.message) from None
        log.debug("published %s", kv(topic=topic.value, key=key, type=msg.TYPE.value))

    async def close(self) -> None:
        """Stop reading; messages not yet acknowledged are read again next run."""
        self._stop.set()
        for done in list(self._pending):
            done.cancel()
        if self._task is not None:
            await asyncio.wait({self._task}, timeout=5.0)
            if self._task.done() and not self._task.cancelled() and self._task.exception():
                log.warning("consumer ended with %s", kv(error=repr(self._task.exception())))
        if self._consumer is not None and (self._task is None or self._task.done()):
            await self._consumer.close()
        if self._publisher is not None:
            with contextlib.suppress(BrokerError):
                await self._publisher.close(timeout=5.0)
