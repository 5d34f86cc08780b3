"""The two peers a monitor links to."""

from __future__ import annotations

import enum

__all__ = ["Peer"]


class Peer(enum.StrEnum):
    ENGINE = "engine"
    CENTRAL = "central"
