"""The driver's exit codes (docs/interfaces.md) and how a session's end maps to them."""

from __future__ import annotations

import enum

from evproto.messages import Outcome
from evproto.service import ExitCode as Common

__all__ = ["ExitCode", "exit_code_for"]


class ExitCode(enum.IntEnum):
    """evproto.service's codes 0-2, then the driver's own (3 is a denial, not credentials)."""

    COMPLETED = Common.STOPPED  # a completed ticket (or nothing to do)
    FAILED = Common.FAILED  # an unexpected error
    USAGE = Common.CONFIG  # bad flags, bad batch line or file
    DENIED = 3
    ABORTED = 4  # aborted or cancelled ticket
    NO_ANSWER = 5  # the central did not answer in time
    BROKER = 6  # the broker is unreachable
    NOT_ENROLLED = 7  # no credential, and enrolling was refused or is not possible
    INTERRUPTED = 130  # Ctrl-C without a ticket


def exit_code_for(outcome: Outcome) -> ExitCode:
    return ExitCode.COMPLETED if outcome is Outcome.COMPLETED else ExitCode.ABORTED
