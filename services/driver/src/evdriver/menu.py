"""The interactive menu (no sub-command): list the CPs, type an id or ENTER, ``quit``.

On a terminal it prompts and lists the CPs before each choice; with stdin not a
terminal it reads the same commands line by line without prompts (scripts, pods).
Commands: a CP id, ENTER or ``any`` (the next available CP), ``list``, ``quit``.
"""

from __future__ import annotations

import sys
from typing import TextIO

from evdriver.app import DriverApp
from evdriver.commands import fetch_cps, resume_unfinished
from evdriver.events import InputRefused
from evdriver.exitcodes import ExitCode
from evdriver.ids import id_problem
from evdriver.lines import LineReader
from evdriver.watcher import ANY_CP, Limits

__all__ = ["run_menu"]

_QUIT = {"quit", "q", "exit"}
HELP = "Type a CP id, press ENTER for the next available one, 'list' to refresh, or 'quit'."


async def run_menu(app: DriverApp, stdin: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    reader = LineReader(stdin)
    on_terminal = stdin.isatty()
    async with app.session() as watcher:
        resumed = await resume_unfinished(app, watcher)
        if resumed is not None and resumed.exit_code is ExitCode.INTERRUPTED:
            return ExitCode.INTERRUPTED
        show_list = True
        while True:
            if show_list:
                app.renderer.show_cps(await fetch_cps(app))
                show_list = on_terminal  # without a terminal: once, then on `list`
            if on_terminal:
                app.renderer.say(HELP)
                app.renderer.prompt("> ")
            line = await reader.readline()
            if line is None:
                return ExitCode.COMPLETED
            command = line.strip()
            if command.lower() in _QUIT:
                return ExitCode.COMPLETED
            if command.lower() == "list":
                show_list = True
                continue
            cp_id = None if command.lower() in ("", ANY_CP) else command
            problem = None if cp_id is None else id_problem(cp_id)
            if problem is not None:
                app.metrics.bad_input.labels(source="menu").inc()
                app.renderer.show(InputRefused(text=command, reason=problem))
                show_list = False
                continue
            result = await app.play(watcher, watcher.request(cp_id, Limits()))
            if result is not None and result.exit_code is ExitCode.INTERRUPTED:
                return ExitCode.INTERRUPTED
