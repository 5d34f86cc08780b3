"""The interactive menu: on a real pseudo-terminal, and line by line from a pipe."""

from __future__ import annotations

import asyncio
import os
import threading
import urllib.request

import pytest
from evproto.states import CpState
from evstack.broker import free_port
from evstack.localstack import console_script

pytestmark = pytest.mark.e2e


class Terminal:
    """The master side of a pty; a thread collects what the driver writes."""

    def __init__(self, master: int) -> None:
        self.master = master
        self.screen = ""
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the driver closed the terminal
                return
            if not chunk:
                return
            self.screen += chunk.decode(errors="replace")

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def close(self) -> None:
        os.close(self.master)
        self._thread.join(5)


async def test_menu_on_a_terminal(central, drivers, unique, script, wait_until) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(steps=3)
    await central.publish_cp_states((cp, CpState.ACTIVE, "Plaza", 0.30))
    metrics = f"127.0.0.1:{free_port()}"
    drivers.enroll(driver_id)
    master, slave = os.openpty()
    proc = await asyncio.create_subprocess_exec(
        console_script("evdriver"),
        "--id",
        driver_id,
        "--metrics",
        metrics,
        "--kafka",
        drivers.bootstrap,
        "--state-dir",
        str(drivers.state_dir),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        start_new_session=True,
    )
    os.close(slave)
    term = Terminal(master)
    try:
        await wait_until(lambda: "press ENTER for the next available" in term.screen, 20, "menu")
        assert cp in term.screen and "Plaza" in term.screen
        assert term.screen.rstrip().endswith(">")
        term.type(f"{cp}\n")
        await wait_until(lambda: "outcome" in term.screen, 20, f"ticket:\n{term.screen}")
        assert f"Authorized at {cp}" in term.screen
        assert "0.030 kWh" in term.screen  # the live progress line
        assert "\x1b[32m" in term.screen  # colours on a terminal
        await wait_until(lambda: term.screen.count("> ") >= 2, 20, "the prompt again")
        scraped = await asyncio.to_thread(_get, f"http://{metrics}/metrics")
        assert "evcharging_driver_requests_total 1.0" in scraped
        assert 'evcharging_driver_outcomes_total{outcome="completed"} 1.0' in scraped
        assert 'evcharging_driver_outcomes_total{outcome="denied"} 0.0' in scraped
        term.type("quit\n")
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        term.close()


async def test_menu_reads_commands_line_by_line_without_a_terminal(
    central, drivers, unique, script
) -> None:
    cp, driver_id = unique("CP"), unique("D")
    central.scripts[cp] = script(steps=2)
    await central.publish_cp_states((cp, CpState.ACTIVE, "Plaza", 0.30))

    driver = await drivers.start(driver_id, stdin=f"not a cp!\n{cp}\nquit\n".encode())

    assert await driver.wait() == 0, driver.stderr
    assert "'not a cp!' is not a valid id" in driver.stderr
    assert "outcome   completed" in driver.stdout
    assert cp in driver.stdout  # the CP list, once
    assert "> " not in driver.stdout and "press ENTER" not in driver.stdout
    assert "\x1b[" not in driver.stdout
    assert len(central.requests) == 1


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return str(answer.read().decode())
