"""Batch mode (M8): CPs requested one after another, 4 s after each conclusion."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_batch_spaces_requests_and_reports_a_bad_line(
    central, drivers, unique, script, tmp_path
) -> None:
    done, denied, last = unique("CP"), unique("CPD"), unique("CPL")
    central.scripts[done] = script(steps=2, step_s=0.2)
    central.scripts[denied] = script(deny="CP is stopped")
    central.scripts[last] = script(steps=1)
    batch = tmp_path / "cps.txt"
    batch.write_text(f"# my route\n{done}\n\nnot a cp!\n{denied}   # busy one\n{last}\n")
    driver_id = unique("D")

    driver = await drivers.run(driver_id, "--json", "batch", str(batch), timeout=60)

    events = driver.events()
    (bad,) = [e for e in events if e["event"] == "error"]
    assert bad["code"] == "bad_line" and bad["line"] == 4 and bad["text"] == "not a cp!"
    requested = [e for e in events if e["event"] == "requested"]
    assert [e["cp_id"] for e in requested] == [done, denied, last]
    concluded = [e for e in events if e["event"] in ("ticket", "denied")]
    assert [e["event"] for e in concluded] == ["ticket", "denied", "ticket"]
    for previous_end, next_request in zip(concluded, requested[1:], strict=False):
        assert next_request["ts"] - previous_end["ts"] >= 4.0
    summary = events[-1]
    assert summary["event"] == "summary"
    assert [(r["line"], r["outcome"]) for r in summary["rows"]] == [
        (2, "completed"),
        (4, "bad_line"),
        (5, "denied"),
        (6, "completed"),
    ]
    # Not all completed: the code of the first line that did not (a bad line is bad usage).
    assert summary["exit_code"] == 2 and driver.proc.returncode == 2


async def test_batch_text_summary_and_exit_code_of_first_failure(
    central, drivers, unique, script, tmp_path
) -> None:
    denied, done = unique("CPD"), unique("CP")
    central.scripts[denied] = script(deny="unknown CP")
    central.scripts[done] = script(steps=1)
    batch = tmp_path / "cps.txt"
    batch.write_text(f"{denied}\n{done}\n")

    driver = await drivers.run(unique("D"), "batch", str(batch), "--interval", "0.5")

    assert driver.proc.returncode == 3
    assert "Summary" in driver.stdout
    assert "denied (3)" in driver.stdout and "unknown CP" in driver.stdout
    assert "exit code 3" in driver.stdout


async def test_batch_file_problems_are_bad_usage(drivers, unique, tmp_path) -> None:
    missing = await drivers.run(unique("D"), "batch", str(tmp_path / "none.txt"))
    assert missing.proc.returncode == 2
    assert "cannot read batch file" in missing.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n\n")
    nothing = await drivers.run(unique("D"), "batch", str(empty))
    assert nothing.proc.returncode == 2
    assert "holds no CP ids" in nothing.stderr
