"""The command line: global settings (flags, EV_ variables, YAML) and the sub-commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from evdriver import batch
from evdriver.ids import id_problem
from evdriver.watcher import ANY_CP

__all__ = ["DESCRIPTION", "EXIT_CODES", "add_commands"]

DESCRIPTION = """\
EV_Driver: ask for a supply at a charging point, follow it live, get the ticket.

Without a sub-command: the interactive menu (type a CP id, ENTER for the next
available CP, 'list', 'quit'); with stdin not a terminal it reads the same
commands line by line. A driver sees only its own messages. Its current or last
session is kept in <state-dir>/<id>.json: restarted with the same id, it shows
the running session or the ticket it missed (`watch`).
"""
EXIT_CODES = (
    "0 completed ticket (or nothing to do) · 1 runtime failure · 2 bad usage · 3 denied · "
    "4 aborted or cancelled · 5 no answer from the central · 6 broker unreachable · "
    "130 interrupted without a ticket"
)


# Raw descriptions keep the exit-code paragraphs; the settings' help already names defaults.
_HelpFormatter = argparse.RawDescriptionHelpFormatter


def _cp_id(text: str) -> str:
    if text.lower() == ANY_CP:
        return ANY_CP
    problem = id_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{problem}; or 'any' for the next available CP")
    return text


def _number(low: float, high: float, *, above_low: bool) -> Callable[[str], float]:
    """An argparse type: a number from ``low`` (excluded if ``above_low``) to ``high``."""
    bounds = f"above {low:g}" if above_low else f"between {low:g} and {high:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (low < value if above_low else low <= value) or not value <= high:
            raise argparse.ArgumentTypeError(f"{text!r} must be a number {bounds}")
        return value

    return parse


_positive = _number(0, 1e9, above_low=True)
_seconds = _number(0, 3600, above_low=False)


def add_commands(parser: argparse.ArgumentParser) -> None:
    """The sub-commands and their arguments, on the parser of the settings."""
    parser.formatter_class = _HelpFormatter
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help, description=description or help, formatter_class=_HelpFormatter
        )

    command("list", "the CPs and which are available now (from the CP-state topic)")
    request = command(
        "request",
        "one supply at CP_ID ('any' = the next available); exit 0 on a completed ticket",
    )
    request.add_argument("cp_id", metavar="CP_ID", type=_cp_id, help="a CP id, or 'any'")
    request.add_argument("--max-kwh", type=_positive, metavar="X", help="stop at X kWh")
    request.add_argument("--max-eur", type=_positive, metavar="Y", help="stop at Y €")
    request.add_argument("--minutes", type=_positive, metavar="Z", help="stop after Z minutes")
    command("stop", "end this driver's running supply and show its ticket")
    command("watch", "follow this driver's running session again, or show the ticket it missed")
    batch_cmd = command("batch", "request the CPs of FILE one after another", batch.__doc__)
    batch_cmd.add_argument("file", metavar="FILE", help="one CP id per line; # comments")
    batch_cmd.add_argument(
        "--interval",
        type=_seconds,
        default=4.0,
        metavar="S",
        help="seconds to wait after each request concludes (default: 4)",
    )
    command("idle", "the driver pod's main process: serve --metrics until SIGTERM, exit 0")
