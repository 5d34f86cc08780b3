"""Operating-system limits a load of thousands of TCP links runs into.

Every simulated CP holds one socket, so the file-descriptor limit goes up to
the hard limit (children started afterwards inherit it). Every link to one
server address uses one ephemeral port per source address; spreading the
links over several loopback sources (127.0.0.2, 127.0.0.3, …) multiplies the
ports available, which matters when links of an earlier step still sit in
TIME_WAIT.
"""

from __future__ import annotations

import resource
import socket

__all__ = ["fds_short_of", "loopback_sources", "raise_fd_limit"]


_WANTED_FDS = 1 << 17  # a 50,000-CP step: 50,000 links in the generator and the central
# what a process holds besides its CP links: Kafka clients, database, HTTP, SSE, listeners
_FD_MARGIN = 256


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.

    The hard limit itself goes up to 131,072 where that is allowed (root), since
    a default of 20,000 or less cannot hold a 20,000- or 50,000-CP step."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < _WANTED_FDS:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, _WANTED_FDS))
            hard = _WANTED_FDS
        except (ValueError, OSError):
            pass  # not permitted: the steps that need more fail and say so
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def fds_short_of(cps: int, limit: int) -> str | None:
    """Why a step of ``cps`` CPs cannot be held under an open-files limit of ``limit``
    (the central, and the generator, hold one socket per CP), or None when it can."""
    needed = cps + _FD_MARGIN
    if limit == resource.RLIM_INFINITY or needed <= limit:
        return None
    return (
        f"{cps:,} CPs need about {needed:,} open files in the central and in the generator; "
        f"the limit here is {limit:,} and may not be raised (CAP_SYS_RESOURCE)"
    )


def loopback_sources(count: int) -> list[str]:
    """Up to ``count`` loopback addresses from 127.0.0.2 on that this host lets us bind."""
    usable = []
    for i in range(2, 2 + count):
        address = f"127.0.0.{i}"
        with socket.socket() as sock:
            try:
                sock.bind((address, 0))
            except OSError:
                break
        usable.append(address)
    return usable or ["127.0.0.1"]
