"""Which core each process of the benchmark runs on.

With two or more cores the central (and the reference servers, measured on the
same core in their own windows) gets the last core to itself; the broker, the
load generator and the bench process share the others. In the OCPP step the
gateway takes the last core and the central joins the others. A process is pinned
thread by thread (``sched_setaffinity`` on every ``/proc/<pid>/task``): threads
started later inherit their creator's cores. Where affinity cannot be set
(one core, no permission) nothing is pinned and the report says so.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SERVER_ROLES", "Pinning"]

SERVER_ROLES = frozenset({"central", "bare", "framed", "gateway"})


@dataclass
class Pinning:
    server_cores: frozenset[int]
    other_cores: frozenset[int]
    pinned: dict[str, list[int]] = field(default_factory=dict)  # role -> cores it got
    failures: dict[str, str] = field(default_factory=dict)

    @classmethod
    def none(cls) -> Pinning:
        return cls(frozenset(), frozenset())

    @classmethod
    def for_this_machine(cls) -> Pinning:
        cores = sorted(os.sched_getaffinity(0))
        if len(cores) < 2:
            return cls.none()
        return cls(frozenset(cores[-1:]), frozenset(cores[:-1]))

    @property
    def active(self) -> bool:
        return bool(self.server_cores)

    def cores_for(self, role: str) -> frozenset[int]:
        return self.server_cores if role in SERVER_ROLES else self.other_cores

    def pin(self, role: str, pid: int) -> None:
        """Every thread of ``pid`` on the role's cores (a thread gone meanwhile is skipped)."""
        if not self.active:
            return
        cores = self.cores_for(role)
        try:
            tids = [int(t.name) for t in Path(f"/proc/{pid}/task").iterdir()]
        except OSError as exc:
            self.failures[role] = str(exc)
            return
        for tid in tids:
            try:
                os.sched_setaffinity(tid, cores)
            except ProcessLookupError:
                continue
            except OSError as exc:
                self.failures[role] = str(exc)
                return
        self.pinned[role] = sorted(cores)

    def pin_self(self) -> None:
        """This process (and so the processes it starts, until pinned elsewhere)."""
        self.pin("bench", os.getpid())

    def prefix(self, role: str) -> list[str]:
        """A command prefix that starts a process on the role's cores (``taskset`` execs)."""
        taskset = shutil.which("taskset")
        if not self.active or taskset is None:
            return []
        self.pinned[role] = sorted(self.cores_for(role))
        return [taskset, "-c", ",".join(str(c) for c in sorted(self.cores_for(role)))]

    def report(self) -> dict[str, object]:
        return {
            "active": self.active,
            "cores": dict(sorted(self.pinned.items())),
            "failures": self.failures,
        }
