"""The keyboard console: the view rendered from a status, and the engine driven
through a pseudo-terminal like a person at the charging point."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from evengine.console import render_view
from evengine.status import EngineStatus
from evproto.states import CpState, Health
from evstack.broker import EmbeddedBroker
from evstack.localstack import console_script
from evstack.waiting import wait_until


def test_the_view_shows_state_session_figures_and_keys() -> None:
    status = EngineStatus(
        "CP-3",
        CpState.SUPPLYING,
        Health.OK,
        0.3,
        22.0,
        session_id="S1",
        driver_id="D7",
        kwh=1.2345,
        eur=0.37,
        elapsed_s=202,
        location="Bay 3",
        central_reachable=False,
        monitor_connected=True,
        broker_up=True,
    )
    view = render_view(status, ["INFO something happened"], width=80)
    for text in (
        "EV charging point CP-3",
        "state:    SUPPLYING (Supplying)",
        "price:    0.30 €/kWh",
        "session:  S1",
        "driver:   D7",
        "energy:   1.234 kWh",
        "cost:     0.37 €",
        "central:  UNREACHABLE",
        "ENTER manual supply · p plug · u unplug · k KO · o OK · q quit",
        "INFO something happened",
    ):
        assert text in view


class Terminal:
    """The engine on a pseudo-terminal: keys in, screen text out."""

    def __init__(self, argv: list[str]) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
        )
        os.close(slave)
        self.master = master
        self.screen = ""

    def press(self, key: bytes) -> int:
        """Send a key; returns where the screen text stood before it."""
        mark = len(self.screen)
        os.write(self.master, key)
        return mark

    def wait_for(self, text: str, since: int = 0, timeout: float = 20.0) -> None:
        def shown() -> bool:
            if text in self.screen[since:]:
                return True
            self.read(0.1)
            return text in self.screen[since:]

        try:
            wait_until(shown, timeout, f"{text!r} on the screen")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; it shows:\n{self.screen[-3000:]}") from None

    def read(self, wait: float) -> None:
        ready, _, _ = select.select([self.master], [], [], wait)
        if ready:
            try:
                self.screen += os.read(self.master, 65536).decode("utf-8", "replace")
            except OSError:  # the process closed the terminal
                time.sleep(wait)

    def wait_exit(self, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self.read(0.1)
        return self.proc.wait(1)

    def echoes(self) -> bool:
        lflag = termios.tcgetattr(self.master)[3]
        return bool(lflag & termios.ECHO)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.master)


@pytest.mark.e2e
@pytest.mark.slow
def test_console_keys_on_a_terminal(embedded_broker: EmbeddedBroker, short_dir: Path) -> None:
    argv = [console_script("evengine"), "--cp-id", "CP-Econsole"]
    argv += ["--kafka", embedded_broker.bootstrap, "--listen", "127.0.0.1:0"]
    argv += ["--control-socket", str(short_dir / "console.sock"), "--plug-delay", "-1"]
    terminal = Terminal(argv)
    try:
        terminal.wait_for("ENTER manual supply · p plug")
        terminal.wait_for("broker:   up")
        assert not terminal.echoes()  # cbreak: keys arrive one by one, unechoed
        mark = terminal.press(b"k")
        terminal.wait_for("health:   KO", since=mark)
        terminal.wait_for("simulated fault", since=mark)
        mark = terminal.press(b"p")
        terminal.wait_for("no authorized supply is waiting", since=mark)
        mark = terminal.press(b"o")
        terminal.wait_for("health:   OK", since=mark)
        mark = terminal.press(b"q")
        assert terminal.wait_exit() == 0
        terminal.wait_for("engine stopped", since=mark)
        assert terminal.echoes()  # the terminal is restored
    finally:
        terminal.close()
