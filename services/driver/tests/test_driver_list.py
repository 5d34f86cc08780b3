"""`evdriver list`: the CPs and their availability, from the CP-state topic."""

from __future__ import annotations

import pytest
from evproto.states import CpState

pytestmark = pytest.mark.e2e


async def test_list_shows_the_latest_state_of_every_cp(central, drivers, unique) -> None:
    tag = unique("")
    cp2, cp10, cp3 = f"CP-2{tag}", f"CP-10{tag}", f"CP-3{tag}"
    await central.publish_cp_states(
        (cp10, CpState.ACTIVE, "Harbour", 0.35),
        (cp2, CpState.ACTIVE, "Main St", 0.30),
        (cp3, CpState.DISCONNECTED, "Depot", None),
        (cp2, CpState.SUPPLYING, "Main St", 0.30),  # the latest record of CP-2 wins
    )

    driver = await drivers.run(unique("D"), "--json", "list")

    assert driver.proc.returncode == 0, driver.stderr
    mine = {e["cp_id"]: e for e in driver.events() if e["cp_id"].endswith(tag)}
    assert set(mine) == {cp2, cp3, cp10}
    assert mine[cp2]["state"] == "SUPPLYING" and mine[cp2]["available"] is False
    assert mine[cp10]["available"] is True and mine[cp10]["price"] == 0.35
    assert mine[cp10]["location"] == "Harbour" and mine[cp10]["label"] == "Active"
    assert mine[cp3]["label"] == "Disconnected" and mine[cp3]["price"] is None

    text = await drivers.run(unique("D"), "list")
    rows = [line for line in text.lines if tag in line]
    assert [row.split()[1] if row.split()[0] == "✓" else row.split()[0] for row in rows] == [
        cp2,
        cp3,
        cp10,
    ]  # natural order
    assert any(cp10 in row and "0.35 €/kWh" in row and "Active" in row for row in rows)
    assert any(cp3 in row and "Disconnected" in row for row in rows)
