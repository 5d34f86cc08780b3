"""Twenty charging points and twenty drivers supplying at once for a minute."""

from __future__ import annotations

import pytest
from e2e_system import System

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CPS = 20


def test_twenty_concurrent_minute_long_sessions_each_end_with_one_exact_ticket(
    system: System,
) -> None:
    system.start(cps=CPS, ready_timeout=120)
    runs = {f"CP-{i}": system.request(f"driver-{i:02d}", f"CP-{i}", minutes=1) for i in range(CPS)}
    for run in runs.values():
        run.wait_for_event("started", 60)

    for cp_id, run in runs.items():
        result = run.wait(120)
        assert result.exit_code == 0, f"{cp_id}: {result}"
        ticket = result.ticket
        assert ticket["outcome"] == "completed" and ticket["cp_id"] == cp_id, ticket
        assert ticket["reason"] == "limit reached: 1 min"
        last_progress = result.of("progress")[-1]
        assert ticket["kwh"] == pytest.approx(last_progress["kwh"]), (ticket, last_progress)
        assert ticket["last_seq"] == last_progress["seq"]
    audit = system.check_conservation(timeout=60)
    assert audit.authorized == audit.completed == CPS, audit.summary()
