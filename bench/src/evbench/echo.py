"""One Kafka hop with nothing else in it: the broker's own latency under the run's load.

An authorization crosses the broker twice (driver -> central, central ->
driver) and telemetry twice too. To tell the central's share of their tail
from the broker's and the machine's, the generator also sends small records
to a topic no service reads (``evbench.echo``) with the drivers' producer
settings and reads them back with a reader like the drivers'. Its latency is
what a hop costs on this machine at this load, with no central on the path.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from evproto.kafka import KafkaSettings, ensure_topics

__all__ = ["ECHO_TOPIC", "BrokerEcho"]

ECHO_TOPIC = "evbench.echo"
_STAMP = struct.Struct("!d")  # the send time, seconds since the epoch


class BrokerEcho:
    """Sends ``rate`` records a second and times each until it is read back."""

    def __init__(self, settings: KafkaSettings, *, rate: float = 20.0) -> None:
        self._settings = settings
        self._interval = 1.0 / rate
        self._producer = Producer(settings.producer())
        self._consumer = Consumer(settings.consumer(f"{settings.client_id}-echo"))
        self.recording = False  # latencies count only while set (a measurement window)
        self.latencies: list[float] = []
        self.sent = 0
        self.received = 0
        self.errors = 0
        self._since = 0.0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await asyncio.to_thread(self._prepare)
        self._tasks = [
            asyncio.create_task(self._send_forever(), name="echo-send"),
            asyncio.create_task(self._read_forever(), name="echo-read"),
        ]

    def _prepare(self) -> None:
        ensure_topics(self._settings, {ECHO_TOPIC: 1})
        partition = TopicPartition(ECHO_TOPIC, 0)
        _low, high = self._consumer.get_watermark_offsets(partition, timeout=10.0)
        self._consumer.assign([TopicPartition(ECHO_TOPIC, 0, high)])
        self._since = time.time()  # records of an earlier run are not ours

    async def _send_forever(self) -> None:
        while not self._stop.is_set():
            self._producer.produce(ECHO_TOPIC, value=_STAMP.pack(time.time()))
            self._producer.poll(0)  # delivery reports; nothing waits for them
            self.sent += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._stop.wait()

    async def _read_forever(self) -> None:
        while not self._stop.is_set():
            record = await asyncio.to_thread(self._consumer.poll, 0.2)
            if record is None:
                continue
            arrived = time.time()
            err = record.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self.errors += 1
                continue
            value = record.value() or b""
            if len(value) != _STAMP.size:
                self.errors += 1
                continue
            (sent,) = _STAMP.unpack(value)
            if sent < self._since:
                continue
            self.received += 1
            if self.recording:
                self.latencies.append(arrived - sent)

    async def close(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.to_thread(self._producer.flush, 5.0)
        await asyncio.to_thread(self._consumer.close)
