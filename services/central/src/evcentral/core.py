"""What the central's parts share: the store, the in-memory model, the outbox, the
event log, the metrics and the clock (one object instead of six arguments each)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from evcentral.db import Database
from evcentral.journal import Journal
from evcentral.metrics import CentralMetrics
from evcentral.outbox import Outbox
from evcentral.registry import Registry

__all__ = ["Core"]


@dataclass(frozen=True, slots=True)
class Core:
    db: Database
    registry: Registry
    outbox: Outbox
    journal: Journal
    metrics: CentralMetrics
    clock: Callable[[], float] = field(default=time.time)
