"""What one Kafka hop costs the embedded broker, by how many batches a partition holds.

The embedded broker (Tansu's in-memory engine) keeps every record of a run and
has no retention; a fetch that finds new data lists every batch the partition
holds before it reads any. So a hop's CPU grows with what was written before
it. This measures that on a broker of its own: each partition is filled with
one-record batches up to each level, then ``hops`` records are sent one at a
time, each read back before the next; the broker's CPU over them, less what it
spends idle (its consumers' long polls) over the same time, is divided by the
hops. CPU time, not latency: the machine's other load hardly moves it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition
from evproto.kafka import KafkaSettings, ensure_topics
from evstack.broker import EmbeddedBroker

__all__ = ["measure_hop_cost"]

_TOPIC = "evbench.hopcost"
_FILL = b"f" * 100  # about a telemetry record's size
_HOP = b"h" * 100
_IDLE_S = 2.0


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure_hop_cost(
    workdir: Path,
    levels: tuple[int, ...] = (0, 2_000, 4_000),
    *,
    partitions: int = 4,
    hops: int = 300,
    pin: Any = None,
) -> dict[str, Any]:
    """Broker CPU µs (and wall ms) per hop at each level of batches per partition.

    ``pin`` is called with the broker's pid (e.g. to put it on the broker's core)."""
    workdir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(log_path=workdir / "broker-hopcost.log")
    broker.start(create=False)
    try:
        assert broker.pid is not None
        if pin is not None:
            pin(broker.pid)
        return _measure(broker, levels, partitions, hops)
    finally:
        broker.stop()


def _measure(
    broker: EmbeddedBroker, levels: tuple[int, ...], partitions: int, hops: int
) -> dict[str, Any]:
    settings = KafkaSettings(broker.bootstrap, client_id="evbench-hopcost")
    ensure_topics(settings, {_TOPIC: partitions})
    producer = Producer({**settings.producer(), "linger.ms": 0})
    consumer = Consumer(settings.consumer("evbench-hopcost"))
    consumer.assign([TopicPartition(_TOPIC, p, 0) for p in range(partitions)])
    pid = broker.pid
    assert pid is not None
    held = 0
    found = []
    try:
        for level in levels:
            while held < level:  # one batch per partition per flush
                for p in range(partitions):
                    producer.produce(_TOPIC, value=_FILL, partition=p)
                producer.flush(30)
                held += 1
            while consumer.poll(0.5) is not None:  # read what the fill wrote
                pass
            idle_start, idle_cpu = time.monotonic(), _cpu_seconds(pid)
            time.sleep(_IDLE_S)
            idle_rate = (_cpu_seconds(pid) - idle_cpu) / (time.monotonic() - idle_start)
            start, cpu = time.monotonic(), _cpu_seconds(pid)
            for i in range(hops):
                producer.produce(_TOPIC, value=_HOP, partition=i % partitions)
                producer.flush(30)
                _read_one(consumer)
            wall = time.monotonic() - start
            used = _cpu_seconds(pid) - cpu - idle_rate * wall
            found.append(
                {
                    "batches_per_partition": held,
                    "broker_us_per_hop": max(0.0, used) / hops * 1e6,
                    "wall_ms_per_hop": wall / hops * 1e3,
                    "idle_cores": idle_rate,
                }
            )
            held += -(-hops // partitions)
    finally:
        consumer.close()
    return {"partitions": partitions, "hops": hops, "levels": found}


def _read_one(consumer: Consumer, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = consumer.poll(1.0)
        if record is not None and record.error() is None and record.value() == _HOP:
            return
    raise TimeoutError("a hop was not read back in time")
