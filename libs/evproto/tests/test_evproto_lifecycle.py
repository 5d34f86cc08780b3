"""One lifecycle: a real process running run_until_stopped drains on SIGTERM and exits 0."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

DEADLINE = 10.0

SERVICE = """
import asyncio, sys
from evproto.lifecycle import run_until_stopped
from evproto.logs import setup_logging

async def serve(stop: asyncio.Event) -> None:
    print("ready", flush=True)
    await stop.wait()
    if "--stuck" in sys.argv:
        await asyncio.Event().wait()  # never drains
    await asyncio.sleep(0.1)  # the drain: finish in-flight work
    print("drained", flush=True)

setup_logging("demo")
sys.exit(run_until_stopped(serve, drain_seconds=float(sys.argv[1])))
"""


async def _start(tmp_path: Path, *args: str) -> asyncio.subprocess.Process:
    script = tmp_path / "service.py"
    script.write_text(textwrap.dedent(SERVICE))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert await asyncio.wait_for(proc.stdout.readline(), DEADLINE) == b"ready\n"
    return proc


async def _finish(proc: asyncio.subprocess.Process) -> tuple[int, str, str]:
    out, err = await asyncio.wait_for(proc.communicate(), DEADLINE)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_drains_and_exits_zero(tmp_path: Path, sig: signal.Signals) -> None:
    proc = await _start(tmp_path, "10")

    proc.send_signal(sig)
    code, out, err = await _finish(proc)

    assert code == 0
    assert out == "drained\n"
    assert f"{sig.name} received, draining" in err


async def test_a_drain_over_its_deadline_is_cut_short(tmp_path: Path) -> None:
    proc = await _start(tmp_path, "0.3", "--stuck")

    proc.send_signal(signal.SIGTERM)
    code, out, err = await _finish(proc)

    assert code == 1
    assert out == ""
    assert "drain took over 0.3s, exiting now" in err


async def test_a_second_signal_exits_at_once(tmp_path: Path) -> None:
    proc = await _start(tmp_path, "60", "--stuck")
    assert proc.stderr is not None

    proc.send_signal(signal.SIGTERM)
    line = await asyncio.wait_for(proc.stderr.readline(), DEADLINE)
    assert b"SIGTERM received, draining" in line
    proc.send_signal(signal.SIGTERM)
    code, _out, err = await _finish(proc)

    assert code == 1
    assert "SIGTERM received again, exiting now" in err


def test_tune_gc_freezes_startup_objects_and_raises_the_thresholds() -> None:
    # in a process of its own: the test runner's collector stays as it is
    probe = (
        "import gc; from evproto.lifecycle import GC_THRESHOLDS, tune_gc_for_many_objects; "
        "tune_gc_for_many_objects(); "
        "print(gc.get_threshold() == GC_THRESHOLDS, gc.get_freeze_count() > 1000)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["True", "True"]
