"""The driver fleet, and what a driver reads per message meant for it.

Simulated drivers publish ``SupplyRequest`` keyed by CP id and follow their
answers on ``ev.supply.responses`` and ``ev.driver.updates``. As real drivers
they are enrolled first (self-enrollment with the enrollment token, on Kafka;
a secret kept from an earlier step is reused), prove each request with their
request key, and open what the central sealed for them. One consumer
reads those topics for the whole fleet and tallies every record by partition,
so each driver's reads in our design (one partition of its key, as the real
driver assigns) and in the seed's (every record of the topic, filtered) are
known exactly. Two real sample readers per topic pair, one per design, run
beside it for the same sample driver as a direct measurement.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from evproto.errors import ConfigError, ProofError
from evproto.kafka import KafkaSettings, Publisher, Record
from evproto.messages import (
    CHANNELS,
    DriverUpdate,
    EnrollRequest,
    EnrollResponse,
    Origin,
    Sealed,
    SessionPhase,
    SupplyRequest,
    SupplyResponse,
    Ticket,
)
from evproto.proofs import (
    EnrollmentKeyPair,
    Purpose,
    Signer,
    derive_key,
    driver_root_key,
    open_sealed,
    prove,
    token_key,
)
from evproto.schema import Message, new_id
from evproto.topics import Topic, partition_for
from evproto.vocabulary import Channel

from evbench.engines import TelemetryClock
from evbench.kafkaread import FleetReader
from evbench.ledger import SessionLedger
from evbench.monitors import SecretStore

__all__ = ["DRIVER_TOPICS", "DriverCounters", "DriverFleet", "ReadTally", "SampleReader"]

log = logging.getLogger("evbench.drivers")
DRIVER_TOPICS = (Topic.SUPPLY_RESPONSES, Topic.DRIVER_UPDATES)
_DIGITS = re.compile(r"\d+")
_SEALED_FOR_DRIVER = CHANNELS[Channel.DRIVER_SEALED]


def _open(msg: Message, root: bytes | None, topic: Topic) -> Message:
    """What the central sealed for a driver, as the real driver opens it; ProofError if not."""
    if not isinstance(msg, Sealed):
        raise ProofError(f"{msg.TYPE.value} came unsealed: not from the central")
    if root is None:
        raise ProofError("sealed for a driver that is not enrolled here")
    return open_sealed(msg, root, topic, _SEALED_FOR_DRIVER)


class ReadTally:
    """Records read per topic partition, and records keyed to each driver."""

    def __init__(self) -> None:
        self.by_partition: dict[tuple[Topic, int], int] = {}
        self.meant: dict[str, int] = {}

    def count(self, record: Record) -> None:
        where = (record.topic, record.partition)
        self.by_partition[where] = self.by_partition.get(where, 0) + 1
        self.meant[record.key] = self.meant.get(record.key, 0) + 1

    def reads_one_partition(self, driver_id: str) -> int:
        """What a driver that reads only its key's partition of each topic reads."""
        return sum(
            self.by_partition.get((t, partition_for(driver_id, t.partitions)), 0)
            for t in DRIVER_TOPICS
        )

    def reads_everything(self) -> int:
        """What a seed driver, reading whole topics and filtering, reads."""
        return sum(self.by_partition.values())

    def per_meant(self, driver_ids: list[str]) -> dict[str, float | int | None]:
        """Reads per message meant for the driver, over every driver that got any.

        All drivers' reads over all their messages (not a mean of ratios, which a
        driver that got one message would dominate).
        """
        served = [d for d in driver_ids if self.meant.get(d)]
        if not served:
            return {"drivers": 0, "ours": None, "seed": None}
        meant = sum(self.meant[d] for d in served)
        ours = sum(self.reads_one_partition(d) for d in served) / meant
        seed = self.reads_everything() * len(served) / meant
        return {"drivers": len(served), "ours": ours, "seed": seed}


@dataclass(slots=True)
class DriverCounters:
    enrolled: int = 0  # drivers enrolled in this step (others reuse a kept secret)
    enroll_refused: dict[str, int] = field(default_factory=dict)
    not_enrolled: int = 0  # requests not made: the driver has no credential
    refused: int = 0  # records keyed to a driver that did not open with its key
    requests: int = 0
    authorized: int = 0
    denied: dict[str, int] = field(default_factory=dict)
    duplicate_responses: int = 0
    unknown_responses: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # DriverUpdate(phase=error) reasons
    updates: int = 0
    tickets: int = 0
    telemetry_unmatched: int = 0  # relayed telemetry with no publish time (repeat or foreign)
    auth_latencies: list[float] = field(default_factory=list)
    telemetry_latencies: list[float] = field(default_factory=list)
    # the same latencies split at the central's publish time (its messages' sent_at):
    # before = broker + the central's consumer and handling, after = delivery to the driver
    auth_until_central: list[float] = field(default_factory=list)
    auth_after_central: list[float] = field(default_factory=list)
    telemetry_until_central: list[float] = field(default_factory=list)
    telemetry_after_central: list[float] = field(default_factory=list)


Release = Callable[[str, str], None]  # (driver id, CP id) free again


class DriverFleet:
    def __init__(
        self,
        settings: KafkaSettings,
        publisher: Publisher,
        driver_ids: list[str],
        clock: TelemetryClock,
        *,
        group_id: str,
        release: Release,
        request_ttl: float = 30.0,
    ) -> None:
        self.driver_ids = driver_ids
        self.clock = clock
        self.counters = DriverCounters()
        self.ledger = SessionLedger()
        self.tally = ReadTally()
        self.request_ttl = request_ttl
        self._mine = set(driver_ids)
        self._publisher = publisher
        self._release = release
        self._pending: dict[str, tuple[str, str, float]] = {}  # request id -> driver, CP, sent
        self._answered: set[str] = set()
        self._roots: dict[str, bytes] = {}  # driver id -> root key (evproto.proofs)
        self._request_keys: dict[str, bytes] = {}
        self._enrolling: dict[str, tuple[EnrollmentKeyPair, asyncio.Future[str | None]]] = {}
        self.publish_failures = 0
        # every update opened for one of ours, as it arrives (the OCPP step times SUPPLYING)
        self.on_update: Callable[[DriverUpdate], None] = lambda _update: None
        self.consumer = FleetReader(
            settings,
            group_id=group_id,
            partitions={t: None for t in DRIVER_TOPICS},
            handler=self._on_message,
        )

    @property
    def unanswered(self) -> int:
        return len(self._pending)

    def root_key(self, driver_id: str) -> bytes | None:
        return self._roots.get(driver_id)

    def _adopt(self, driver_id: str, secret: str) -> None:
        root = self._roots[driver_id] = driver_root_key(secret)
        self._request_keys[driver_id] = derive_key(root, Purpose.DRIVER_REQUESTS)

    async def enroll(self, token: str, secrets: SecretStore, timeout: float = 30.0) -> int:
        """Give every driver a credential, as ``evdriver`` does on first use; the number
        of drivers with one. Call once the consumer runs (the answers come through it)."""
        loop = asyncio.get_running_loop()
        waiting: dict[str, asyncio.Future[str | None]] = {}
        for driver_id in self.driver_ids:
            secret = secrets.get(driver_id)
            if secret is not None:
                self._adopt(driver_id, secret)
                continue
            if not token:
                raise ConfigError(f"{driver_id} has no credential: give the enrollment token")
            pair = EnrollmentKeyPair()
            request = prove(
                EnrollRequest(request_id=new_id(), driver_id=driver_id, public_key=pair.public,
                              sent_at=time.time()),
                token_key(token),
                Signer.ENROLLING,
            )  # fmt: skip
            waiting[driver_id] = loop.create_future()
            self._enrolling[request.request_id] = (pair, waiting[driver_id])
            fut = self._publisher.publish(Topic.SUPPLY_REQUESTS, driver_id, request)
            fut.add_done_callback(self._delivered)
        if waiting:
            await asyncio.wait(waiting.values(), timeout=timeout)
        self._enrolling.clear()
        for driver_id, answer in waiting.items():
            secret = answer.result() if answer.done() else None
            answer.cancel()
            if secret is not None:
                secrets.put(driver_id, secret)
                self._adopt(driver_id, secret)
                self.counters.enrolled += 1
        secrets.save()
        missing = len(self.driver_ids) - len(self._roots)
        if missing:
            log.warning("drivers without a credential: %d of %d", missing, len(self.driver_ids))
        return len(self._roots)

    def _on_enrolled(self, msg: EnrollResponse) -> None:
        pair, answer = self._enrolling.get(msg.request_id, (None, None))
        if pair is None or answer is None or answer.done():
            return
        try:
            if not msg.accepted:
                raise ProofError(_DIGITS.sub("N", msg.reason))
            answer.set_result(pair.open(msg))
        except ProofError as exc:
            refused = self.counters.enroll_refused
            refused[exc.message] = refused.get(exc.message, 0) + 1
            answer.set_result(None)

    def request(self, driver_id: str, cp_id: str) -> None:
        key = self._request_keys.get(driver_id)
        if key is None:  # the central would refuse it unanswered: not sent
            self.counters.not_enrolled += 1
            self._release(driver_id, cp_id)
            return
        sent = time.time()
        msg = SupplyRequest(
            request_id=new_id(), requester_id=driver_id, origin=Origin.DRIVER, cp_id=cp_id,
            sent_at=sent, ttl_s=self.request_ttl,
        )  # fmt: skip
        msg = prove(msg, key, Signer.DRIVER)
        self._pending[msg.request_id] = (driver_id, cp_id, sent)
        self.counters.requests += 1
        fut = self._publisher.publish(Topic.SUPPLY_REQUESTS, cp_id, msg)
        fut.add_done_callback(self._delivered)

    def _delivered(self, fut: asyncio.Future[None]) -> None:
        if fut.cancelled() or fut.exception() is not None:
            self.publish_failures += 1

    def _on_message(self, msg: Message, record: Record) -> None:
        if isinstance(msg, EnrollResponse):  # before the measured steps: not tallied
            self._on_enrolled(msg)
            return
        self.tally.count(record)
        if record.key not in self._mine:
            return
        try:
            msg = _open(msg, self._roots.get(record.key), record.topic)
        except ProofError as exc:
            self.counters.refused += 1
            log.warning("refused driver=%s reason=%s", record.key, exc.message)
            return
        if isinstance(msg, SupplyResponse):
            self._on_response(msg)
        elif isinstance(msg, DriverUpdate):
            self._on_update(msg)
        elif isinstance(msg, Ticket):
            self.counters.tickets += 1
            if self.ledger.ticket(msg.session_id, msg.last_seq):
                self._release(msg.driver_id, msg.cp_id)

    def _on_response(self, msg: SupplyResponse) -> None:
        pending = self._pending.pop(msg.request_id, None)
        if pending is None:
            if msg.request_id in self._answered:
                self.counters.duplicate_responses += 1
            else:
                self.counters.unknown_responses += 1
            return
        self._answered.add(msg.request_id)
        driver_id, cp_id, sent = pending
        now = time.time()
        self.counters.auth_latencies.append(now - sent)
        self.counters.auth_until_central.append(msg.sent_at - sent)
        self.counters.auth_after_central.append(now - msg.sent_at)
        if msg.authorized and msg.session_id is not None:
            self.counters.authorized += 1
            self.ledger.authorized(msg.session_id, driver_id, cp_id)
        else:
            denied = self.counters.denied
            reason = _DIGITS.sub("N", msg.reason)  # "expired (31 s old)" and "(32 s old)" alike
            denied[reason] = denied.get(reason, 0) + 1
            self._release(driver_id, cp_id)

    def _on_update(self, msg: DriverUpdate) -> None:
        self.counters.updates += 1
        self.on_update(msg)
        if msg.phase is SessionPhase.ERROR:
            errors = self.counters.errors
            errors[msg.reason] = errors.get(msg.reason, 0) + 1
            return
        if msg.phase is not SessionPhase.SUPPLYING or msg.seq < 1:
            return
        self.ledger.telemetry(msg.session_id, msg.seq)
        published = self.clock.pop(msg.session_id, msg.seq)
        if published is None:
            self.counters.telemetry_unmatched += 1
        else:
            now = time.time()
            self.counters.telemetry_latencies.append(now - published)
            self.counters.telemetry_until_central.append(msg.sent_at - published)
            self.counters.telemetry_after_central.append(now - msg.sent_at)


class SampleReader:
    """One real driver-side consumer: its own key's partition (ours) or whole topics (seed)."""

    def __init__(
        self, settings: KafkaSettings, driver_id: str, *, whole_topics: bool, group_id: str
    ) -> None:
        self.driver_id = driver_id
        self.root_key: bytes | None = None  # the driver's, once enrolled
        self.design = "seed" if whole_topics else "ours"
        self.read = 0
        self.meant = 0
        self.refused = 0  # keyed to the driver but not opening with its key
        partitions: dict[Topic, list[int] | None] = {
            t: None if whole_topics else [partition_for(driver_id, t.partitions)]
            for t in DRIVER_TOPICS
        }
        self.consumer = FleetReader(
            settings, group_id=group_id, partitions=partitions, handler=self._on_message
        )

    def _on_message(self, msg: Message, record: Record) -> None:
        if isinstance(msg, EnrollResponse):  # before the measured steps: not counted
            return
        self.read += 1
        if record.key != self.driver_id:
            return
        try:
            _open(msg, self.root_key, record.topic)  # what the driver pays for each of its own
        except ProofError:
            self.refused += 1
            return
        self.meant += 1

    def result(self) -> dict[str, object]:
        return {
            "design": self.design,
            "driver": self.driver_id,
            "read": self.read,
            "meant": self.meant,
            "refused": self.refused,
            "per_meant": self.read / self.meant if self.meant else None,
        }
