"""Topics, partition counts and the one partitioner."""

from __future__ import annotations

import zlib

import pytest
from evproto.states import CpState, Health
from evproto.topics import Topic, partition_for


def test_topic_names_and_partition_counts_match_the_contract() -> None:
    assert {t.value: t.partitions for t in Topic} == {
        "ev.supply.requests": 8,
        "ev.supply.responses": 16,
        "ev.directives": 16,
        "ev.supply.telemetry": 16,
        "ev.driver.updates": 16,
        "ev.cp.state": 8,
        "ev.deadletter": 1,
    }


@pytest.mark.parametrize(
    ("key", "partitions", "expected"),
    [
        ("CP-0", 16, 12),
        ("CP-1", 16, 10),
        ("D1", 16, 4),
        ("any", 8, 4),
        ("", 16, 0),
    ],
)
def test_partition_for_is_stable_crc32(key: str, partitions: int, expected: int) -> None:
    # Pinned: changing the partitioner would strand every committed key.
    assert partition_for(key, partitions) == expected


def test_partition_for_is_the_standard_crc32_check_value() -> None:
    assert zlib.crc32(b"123456789") == 0xCBF43926  # the CRC-32 (IEEE) check value
    assert partition_for("123456789", 1 << 32) == 0xCBF43926


@pytest.mark.parametrize("partitions", [1, 7, 8, 16])
def test_partition_for_is_in_range_and_spreads_keys(partitions: int) -> None:
    seen = {partition_for(f"CP-{i}", partitions) for i in range(200)}
    assert seen == set(range(partitions))


def test_non_ascii_keys_are_hashed_as_utf8() -> None:
    assert partition_for("Zürich", 16) == zlib.crc32("Zürich".encode()) % 16


def test_every_state_has_a_colour_and_label_and_only_active_is_available() -> None:
    assert {s: s.colour for s in CpState}[CpState.STOPPED] == "orange"
    assert CpState.BROKEN_DOWN.colour == "red"
    assert CpState.DISCONNECTED.colour == "grey"
    assert CpState.STOPPED.label == "Out of Order"
    assert all(s.label for s in CpState)
    assert [s for s in CpState if s.available] == [CpState.ACTIVE]
    assert {h.value for h in Health} == {"OK", "KO", "UNREACHABLE"}
