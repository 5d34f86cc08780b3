"""The embedded broker's CPU per hop, by the batches a partition holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from evbench.brokercost import measure_hop_cost

pytestmark = pytest.mark.slow


def test_each_level_is_filled_and_timed(tmp_path: Path) -> None:
    found = measure_hop_cost(tmp_path, (0, 100), partitions=2, hops=10)
    levels = found["levels"]
    assert [lv["batches_per_partition"] for lv in levels] == [0, 100]
    for level in levels:
        assert level["broker_us_per_hop"] >= 0 and level["wall_ms_per_hop"] > 0
