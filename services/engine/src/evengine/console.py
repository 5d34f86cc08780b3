"""The keyboard console of a CP with a terminal: a live status view and single keys.

ENTER manual supply · p plug · u unplug · k KO · o OK · q shut down. On a
terminal, stdin goes to cbreak mode (keys arrive one by one, unechoed) and is
restored on exit. With ``--console on`` and a pipe on stdin, each line is a
key (an empty line is ENTER). While the view is on a terminal, log lines are
shown inside it instead of being written over it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import sys
import termios
import tty
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, TextIO

from evengine.control import ControlAnswer, ControlCommand
from evengine.status import EngineStatus

__all__ = ["KEYS", "Console", "render_view"]

KEYS: dict[str, ControlCommand | None] = {
    "\n": ControlCommand.SUPPLY,
    "\r": ControlCommand.SUPPLY,
    "p": ControlCommand.PLUG,
    "u": ControlCommand.UNPLUG,
    "k": ControlCommand.KO,
    "o": ControlCommand.OK,
    "q": None,  # shut down
}
_HELP = "ENTER manual supply · p plug · u unplug · k KO · o OK · q quit"
_RECENT_LINES = 12
_CLEAR = "\x1b[H\x1b[2J"


def render_view(status: EngineStatus, recent: list[str], width: int = 80) -> str:
    """The whole screen: status, keys, then the most recent events."""
    rule = "─" * min(width, 100)
    lines = [f"EV charging point {status.cp_id}", rule, *status.lines(), rule, _HELP, rule]
    lines += [line[:width] for line in recent]
    return "\n".join(lines) + "\n"


def _writes_to_terminal(handler: logging.Handler) -> bool:
    stream = getattr(handler, "stream", None)
    isatty = getattr(stream, "isatty", None)
    return isinstance(handler, logging.StreamHandler) and callable(isatty) and bool(isatty())


class _ViewLogHandler(logging.Handler):
    """Log records into the view (thread-safe: Kafka callbacks log from threads)."""

    def __init__(self, console: Console, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._console = console
        self._loop = loop
        self.setFormatter(logging.Formatter("%(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed at exit
            self._loop.call_soon_threadsafe(self._console.note, self.format(record))


class Console:
    def __init__(
        self,
        *,
        status: Callable[[], EngineStatus],
        execute: Callable[[ControlCommand], Awaitable[ControlAnswer]],
        quit: Callable[[], None],
        stdin: TextIO = sys.stdin,
        stdout: TextIO = sys.stdout,
    ) -> None:
        self._status = status
        self._execute = execute
        self._quit = quit
        self._fd = stdin.fileno()
        self._out = stdout
        self._terminal = os.isatty(self._fd)
        self._saved_mode: list[Any] | None = None
        self._recent: deque[str] = deque(maxlen=_RECENT_LINES)
        self._partial = ""
        self._tasks: set[asyncio.Task[None]] = set()
        self._redraw_pending = False
        self._log_handler: _ViewLogHandler | None = None
        self._hidden_handlers: list[logging.Handler] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        if self._terminal:
            self._saved_mode = termios.tcgetattr(self._fd)
            tty.setcbreak(self._fd)
        self._loop.add_reader(self._fd, self._on_input)
        self._log_handler = _ViewLogHandler(self, self._loop)
        root = logging.getLogger()
        root.addHandler(self._log_handler)
        if self._out.isatty():
            # The view owns the terminal: log lines written to it would scroll it away.
            self._hidden_handlers = [h for h in root.handlers if _writes_to_terminal(h)]
            for handler in self._hidden_handlers:
                root.removeHandler(handler)
        self.refresh()

    def stop(self) -> None:
        if self._loop is None:
            return
        self._loop.remove_reader(self._fd)
        for task in self._tasks:
            task.cancel()
        root = logging.getLogger()
        if self._log_handler is not None:
            root.removeHandler(self._log_handler)
        for handler in self._hidden_handlers:
            root.addHandler(handler)
        if self._saved_mode is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved_mode)
        self._draw()
        self._loop = None

    def note(self, line: str) -> None:
        self._recent.append(line)
        self.refresh()

    def refresh(self) -> None:
        """Redraw soon; several changes in one loop turn make one redraw."""
        if self._loop is None or self._redraw_pending:
            return
        self._redraw_pending = True
        self._loop.call_soon(self._draw)

    def _draw(self) -> None:
        self._redraw_pending = False
        width = shutil.get_terminal_size((100, 30)).columns
        screen = render_view(self._status(), list(self._recent), width)
        with contextlib.suppress(OSError, ValueError):
            self._out.write((_CLEAR if self._out.isatty() else "") + screen)
            self._out.flush()

    # --- keys -----------------------------------------------------------------------

    def _on_input(self) -> None:
        try:
            data = os.read(self._fd, 1024)
        except OSError:
            data = b""
        if not data:  # end of input: no more keys, the engine runs on
            assert self._loop is not None
            self._loop.remove_reader(self._fd)
            return
        for key in self._keys(data.decode("utf-8", "replace")):
            self._press(key)

    def _keys(self, text: str) -> list[str]:
        if self._terminal:
            return list(text)
        # A pipe: whole lines, an empty line being ENTER.
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        return [line.strip()[:1].lower() or "\n" for line in lines]

    def _press(self, key: str) -> None:
        if key not in KEYS and key.lower() in KEYS:
            key = key.lower()
        if key not in KEYS:
            self.note(f"key {key!r} does nothing here; {_HELP}")
            return
        command = KEYS[key]
        if command is None:
            self.note("shutting down (q)")
            self._quit()
            return
        task = asyncio.create_task(self._run(command))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, command: ControlCommand) -> None:
        answer = await self._execute(command)
        if not answer.ok:  # a done command is already in the log lines
            self.note(answer.message)
        self.refresh()
