"""CPU time and resident memory of a process, from ``/proc`` (every thread included).

A :class:`ProcessSampler` thread records ``(wall time, CPU seconds, RSS)`` of a
few processes twice a second, so the harness can ask afterwards how many cores a
process used between two wall-clock instants that another process reported.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MACHINE", "ProcessSampler", "Sample", "cpu_seconds", "machine_cpu_seconds", "rss_bytes"]

MACHINE = "machine"  # the pseudo-process of every CPU on the host

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process so far (fields 14 and 15 of /proc/PID/stat)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces; the fields we want follow its ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole host (all cores, idle and iowait excluded), from /proc/stat."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident memory (VmRSS of /proc/PID/status), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0  # a zombie has no VmRSS line


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # wall clock, time.time()
    cpu_s: float
    rss: int


@dataclass
class _Series:
    samples: list[Sample] = field(default_factory=list)

    def at_or_before(self, t: float) -> Sample | None:
        i = bisect.bisect_right([s.at for s in self.samples], t)
        return self.samples[i - 1] if i else None

    def at_or_after(self, t: float) -> Sample | None:
        i = bisect.bisect_left([s.at for s in self.samples], t)
        return self.samples[i] if i < len(self.samples) else None


class ProcessSampler:
    """Samples named processes every ``interval`` seconds in a daemon thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._pids: dict[str, int] = {}
        self._series: dict[str, _Series] = {MACHINE: _Series()}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="procstat", daemon=True)

    def watch(self, name: str, pid: int) -> None:
        with self._lock:
            self._pids[name] = pid
            self._series[name] = _Series()

    def forget(self, name: str) -> None:
        with self._lock:
            self._pids.pop(name, None)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample_now()

    def sample_now(self) -> None:
        with self._lock:
            pids = dict(self._pids)
            self._series[MACHINE].samples.append(Sample(time.time(), machine_cpu_seconds(), 0))
        for name, pid in pids.items():
            try:
                sample = Sample(time.time(), cpu_seconds(pid), rss_bytes(pid))
            except (OSError, ValueError, IndexError):
                continue  # the process is gone or exiting
            with self._lock:
                self._series[name].samples.append(sample)

    def cores(self, name: str, start: float, end: float) -> float | None:
        """Mean cores used between two wall-clock instants (samples inside the window)."""
        with self._lock:
            series = self._series.get(name)
            first = series.at_or_after(start) if series else None
            last = series.at_or_before(end) if series else None
        if first is None or last is None or last.at - first.at < self.interval:
            return None
        return (last.cpu_s - first.cpu_s) / (last.at - first.at)

    def cpu_between(self, name: str, start: float, end: float) -> float | None:
        """CPU seconds spent inside the window, scaled to its full length."""
        used = self.cores(name, start, end)
        return None if used is None else used * (end - start)

    def peak_rss(self, name: str, start: float, end: float) -> int | None:
        with self._lock:
            series = self._series.get(name)
            inside = [s.rss for s in series.samples if start <= s.at <= end] if series else []
        return max(inside) if inside else None

    def last_rss(self, name: str, end: float) -> int | None:
        with self._lock:
            series = self._series.get(name)
            sample = series.at_or_before(end) if series else None
        return sample.rss if sample else None
