"""The memory probe's figure: KB per CP as the slope between fleet sizes."""

from __future__ import annotations

import pytest
from evbench.memory import kb_per_cp, main


def test_kb_per_cp_is_the_slope_between_the_smallest_and_largest_fleet() -> None:
    assert kb_per_cp({1000: 74_000, 2000: 81_000, 3000: 89_000}) == 7.5
    assert kb_per_cp({1000: 74_000}) is None


def test_one_fleet_size_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--cps", "1000"])
    assert exit_.value.code == 2
    assert "two or more sizes" in capsys.readouterr().err
