"""CPU and memory of a process, read from /proc."""

from __future__ import annotations

import os
import time

from evbench.procstat import MACHINE, ProcessSampler, cpu_seconds, machine_cpu_seconds, rss_bytes


def _busy(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_this_process_uses_cpu_and_memory() -> None:
    before = cpu_seconds(os.getpid())
    _busy(0.1)
    assert cpu_seconds(os.getpid()) > before
    assert rss_bytes(os.getpid()) > 1 << 20
    assert machine_cpu_seconds() > 0


def test_the_sampler_reports_cores_used_between_two_instants() -> None:
    sampler = ProcessSampler(interval=0.05)
    sampler.watch("me", os.getpid())
    start = time.time()
    sampler.sample_now()
    _busy(0.2)
    sampler.sample_now()
    end = time.time()
    cores = sampler.cores("me", start, end)
    assert cores is not None and 0 < cores <= (os.cpu_count() or 1)
    assert sampler.cores(MACHINE, start, end) is not None
    assert (sampler.last_rss("me", end) or 0) > 1 << 20
    assert sampler.cores("nobody", start, end) is None
