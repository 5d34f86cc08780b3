"""Hostile input and overload against the real processes, while a legitimate supply
runs (issue 15; docs/reliability.md): idle pre-authentication connections, stuck
event-stream clients, a flood of bogus frames from an authenticated monitor,
garbage records on every topic and slow-header HTTP clients, all at once.

What must hold: every CP keeps the state it should, the legitimate ticket
arrives exactly once, the central's RSS stays bounded, /healthz answers within
a second, and every refusal is counted. The long mode raises the counts:
``EV_HOSTILE_IDLE=3000 EV_HOSTILE_RECORDS=100000 …`` (see ``scaled``).
"""

from __future__ import annotations

import itertools
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from e2e_hostile import (
    AttackLoop,
    Attacks,
    garbage_records,
    raise_open_files_limit,
    scaled,
)
from e2e_system import System
from evstack.waiting import wait_until

pytestmark = pytest.mark.e2e

RSS_BOUND_MB = 300.0  # the chart gives the central 512 Mi
HEALTHZ_WITHIN_S = 1.0
# Small caps so the test reaches them in seconds; the defaults are in docs/interfaces.md.
CENTRAL_ARGS = (
    "--max-pending-per-address", "1000",
    "--max-event-clients", "100",
    "--event-write-timeout", "5",
    "--http-idle-timeout", "3",
    "--handshake-timeout", "10",
)  # fmt: skip


def max_gap_s() -> float:
    """The longest wait between two progress reports (sent every second) the driver may
    see. The long mode's 100,000 poison records put ~1,500 a second in front of the
    driver's updates, in the same partitions: reported in docs/reliability.md."""
    return 2.0 if scaled("records", 2000) <= 2000 else 5.0


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def healthz_seconds(url: str) -> float:
    began = time.monotonic()
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
        assert answer.status == 200
    return time.monotonic() - began


def test_the_central_stays_up_bounded_and_serving_under_every_attack_at_once(
    system: System,
) -> None:
    raise_open_files_limit()
    system.start(cps=2, central_args=CENTRAL_ARGS)
    stack = system.stack
    central_pid = system.central.pid
    rss_before = rss_mb(central_pid)
    driver = system.request("alice", "CP-0", max_kwh=0.05)  # ~8 s of supply at 22 kW
    system.wait_supplying("CP-0", "alice")

    attacks = Attacks(stack.host, stack.listen_port, stack.http_port)
    loop = AttackLoop()
    producer = ThreadPoolExecutor(1, thread_name_prefix="garbage")
    try:
        evil = loop.submit(attacks.authenticated_monitor("EVIL-0", stack.registration_token))
        evil_link = evil.result(30)
        idle = loop.submit(attacks.idle_monitor_connections(scaled("idle", 3000)))
        streams = loop.submit(
            attacks.stuck_event_streams(scaled("streams", 200), stack.viewer_token)
        )
        idle.result(60)
        streams.result(60)
        holding = system.api.metrics()
        pending = holding.value("evcharging_central_pending_monitor_connections")
        assert 0 < pending <= 1000, f"{pending} unauthenticated connections held"
        streaming = holding.value("evcharging_central_event_clients")
        assert streaming <= 100, f"{streaming} event streams held"

        flood = loop.submit(attacks.flood(evil_link, scaled("frames", 10_000)))
        slow = loop.submit(attacks.slow_headers(scaled("slow", 50), pause=0.5))
        keys = ["CP-0", "CP-1", "alice", "EVIL-0"]
        garbage = producer.submit(garbage_records, stack.bootstrap, scaled("records", 2000), keys)
        assert flood.result(60), "the flooding monitor's link stayed open"

        # under attack: the legitimate supply goes on and the central answers
        slowest = max(healthz_seconds(stack.http_url) for _ in range(5))
        assert slowest < HEALTHZ_WITHIN_S, f"/healthz took {slowest:.2f} s"
        assert system.api.cps()["CP-1"]["state"] == "ACTIVE"
        peak = rss_mb(central_pid)
        sent = garbage.result(900)
        peak = max(peak, rss_mb(central_pid))

        assert slow.result(60) == scaled("slow", 50), "a slow-header client was not closed"
        result = driver.wait(60)
        assert result.exit_code == 0, result
        assert result.ticket["outcome"] == "completed"
        # the driver saw progress every second: no stall of legitimate traffic over 1 s
        stamps = [p["ts"] for p in result.of("progress")]
        gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
        print(f"largest progress gap: {max(gaps):.2f} s")
        assert max(gaps) < max_gap_s(), f"progress stalled: gaps {gaps}"
        peak = max(peak, rss_mb(central_pid))
    finally:
        loop.submit(attacks.release()).result(10)
        loop.close()
        producer.shutdown(wait=True)

    metrics = system.api.metrics()

    def counted(name: str, **labels: str) -> float:
        return metrics.value(f"evcharging_central_{name}", **labels)

    assert counted("connections_capped_total", reason="pending_per_address") >= 1
    assert counted("connections_capped_total", reason="event_clients") >= 100
    assert counted("protocol_errors_total", kind="error_budget") >= 1
    share = sent // 8  # garbage_records spreads over the eight topics

    def central_dead_lettered_its_share() -> bool:
        letters = system.api.metrics()
        return all(
            letters.value("evcharging_central_kafka_dead_letters_total", topic=topic) >= share - 1
            for topic in ("ev.supply.requests", "ev.supply.telemetry")
        )

    wait_until(central_dead_lettered_its_share, 30 + sent / 1000, "every garbage record counted")
    peak = max(peak, rss_mb(central_pid))
    wait_until(
        lambda: system.api.cps()["CP-0"]["state"] == "ACTIVE", 10, "CP-0 ACTIVE after its ticket"
    )
    assert system.api.cps()["CP-1"]["state"] == "ACTIVE"
    assert peak < RSS_BOUND_MB, f"central RSS {peak:.0f} MB (before: {rss_before:.0f} MB)"
    print(f"central RSS: {rss_before:.0f} MB before, {peak:.0f} MB at the peak of the attack")
    system.check_conservation(garbage_expected=True)


def test_the_central_stops_in_time_with_streams_open_and_the_broker_gone(
    system: System,
) -> None:
    """Ctrl-C on `make run` with a dashboard open once left the central retrying the
    broker for over 30 s (issue 15)."""
    system.start(cps=1)
    stack = system.stack
    attacks = Attacks(stack.host, stack.listen_port, stack.http_port)
    loop = AttackLoop()
    try:
        loop.submit(attacks.stuck_event_streams(3, stack.viewer_token)).result(10)
        wait_until(
            lambda: system.api.metrics().value("evcharging_central_event_clients") == 3,
            10,
            "three streams open",
        )
        system.stop_broker()
        began = time.monotonic()
        code = system.central.stop(30)
        took = time.monotonic() - began
    finally:
        loop.submit(attacks.release()).result(10)
        loop.close()
    print(f"the central stopped in {took:.1f} s")
    assert code == 0 and took < 12, f"the central exited {code} after {took:.1f} s"
    system.kill(system.central)  # it is down on purpose
    system.start_broker_again(create_topics=True)
    system.start_again(system.central)
    system.check_conservation(since=time.time())
