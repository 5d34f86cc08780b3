"""Read positions kept by the reader itself, in a file, instead of a consumer group.

A group's committed offsets can be moved by anyone the broker lets commit to
that group; a reader that keeps its positions in its own file (mode 0600) and
never commits to Kafka has none to move. The file maps ``topic`` to
``{partition: next offset}``, is written atomically (temporary file, fsync,
rename) and read back with a bound on its size.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from evproto.logs import kv
from evproto.secret_file import write_atomically

__all__ = ["PositionFile", "Positions"]

log = logging.getLogger("evproto.kafka")
_MAX_FILE_BYTES = 64 * 1024

Positions = dict[tuple[str, int], int]
"""The next offset to read, per (topic, partition)."""


class PositionFile:
    """Positions in ``path`` (None: kept in memory only, for a throw-away reader)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._kept: Positions = {}

    def load(self) -> Positions:
        """The stored positions; none (with a warning) when the file is missing or unusable."""
        if self.path is None:
            return dict(self._kept)
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("positions unreadable %s", kv(path=self.path, error=exc.strerror))
            return {}
        try:
            if len(raw) > _MAX_FILE_BYTES:
                raise ValueError("file too large")
            return _parse(json.loads(raw))
        except (ValueError, TypeError, AttributeError) as exc:
            log.warning("positions ignored %s", kv(path=self.path, error=exc))
            return {}

    def save(self, positions: Positions) -> None:
        """Store atomically with mode 0600; OSError when the disk refuses."""
        self._kept = dict(positions)
        if self.path is None:
            return
        by_topic: dict[str, dict[str, int]] = {}
        for (topic, partition), offset in sorted(positions.items()):
            by_topic.setdefault(topic, {})[str(partition)] = offset
        write_atomically(self.path, json.dumps(by_topic, sort_keys=True).encode())


def _parse(data: object) -> Positions:
    if not isinstance(data, dict):
        raise ValueError("not an object of topics")
    positions: Positions = {}
    for topic, partitions in data.items():
        for partition, offset in partitions.items():
            if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
                raise ValueError(f"bad offset for {topic}[{partition}]")
            positions[(str(topic), int(partition))] = offset
    return positions
