"""Batch mode (M8): request the CPs of a file one after another.

One CP id per line (``any`` = next available); ``#`` starts a comment; blank
lines are skipped. Each request is sent when the previous one has concluded
(ticket, denial or no answer) plus ``--interval`` seconds. A line that is not a
CP id is reported with its number and skipped. The exit code is 0 when every
request completed, else the code of the first line (in file order) that did not:
2 not a CP id, 3 denied, 4 aborted or cancelled, 5 no answer, 6 broker
unreachable (the batch stops there), 130 interrupted (the batch stops there).
"""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from evproto.errors import ConfigError

from evdriver.app import DriverApp
from evdriver.commands import resume_unfinished
from evdriver.events import BadLine, BrokerUnreachable, Summary, SummaryRow
from evdriver.exitcodes import ExitCode
from evdriver.ids import id_problem
from evdriver.link import BrokerUnavailable
from evdriver.watcher import ANY_CP, Limits

__all__ = ["BatchLine", "parse_batch", "read_batch_file", "run_batch"]

_MAX_FILE_BYTES = 1024 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class BatchLine:
    number: int
    text: str
    problem: str | None  # why it is not a CP id, or None

    @property
    def cp_id(self) -> str | None:
        return None if self.text.lower() == ANY_CP else self.text


def parse_batch(text: str) -> list[BatchLine]:
    lines = []
    for number, raw in enumerate(text.splitlines(), start=1):
        entry = raw.split("#", 1)[0].strip()
        if entry:
            problem = None if entry.lower() == ANY_CP else id_problem(entry)
            lines.append(BatchLine(number, entry, problem))
    return lines


def read_batch_file(path: Path) -> list[BatchLine]:
    """The file's entries, or a ConfigError that says what is wrong with it."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read batch file {path}: {exc.strerror}") from None
    if len(raw) > _MAX_FILE_BYTES:
        raise ConfigError(f"batch file {path} is larger than {_MAX_FILE_BYTES} bytes")
    entries = parse_batch(raw.decode("utf-8", "replace"))
    if not entries:
        raise ConfigError(f"batch file {path} holds no CP ids")
    return entries


async def run_batch(app: DriverApp, entries: list[BatchLine], interval: float) -> int:
    rows: list[SummaryRow] = []
    current = entries[0]
    try:
        async with app.session() as watcher:
            resumed = await resume_unfinished(app, watcher)
            if resumed is not None and resumed.exit_code is ExitCode.INTERRUPTED:
                return ExitCode.INTERRUPTED
            concluded = False
            for entry in entries:
                current = entry
                if entry.problem is not None:
                    app.metrics.bad_input.labels(source="batch_line").inc()
                    app.renderer.show(
                        BadLine(line=entry.number, text=entry.text, reason=entry.problem)
                    )
                    rows.append(_failed(entry, "bad_line", ExitCode.USAGE, entry.problem))
                    continue
                if concluded:
                    await asyncio.sleep(interval)  # M8: the pause after each concluded request
                result = await app.play(watcher, watcher.request(entry.cp_id, Limits()))
                concluded = True
                if result is None:
                    continue
                rows.append(
                    SummaryRow(
                        line=entry.number,
                        cp_id=result.cp_id or entry.text,
                        outcome=result.outcome,
                        exit_code=result.exit_code,
                        kwh=result.kwh,
                        eur=result.eur,
                        reason=result.reason,
                    )
                )
                if result.exit_code is ExitCode.INTERRUPTED:
                    break
    except BrokerUnavailable as exc:
        app.renderer.show(BrokerUnreachable(bootstrap=app.settings.kafka, detail=exc.message))
        rows.append(_failed(current, "broker_unreachable", ExitCode.BROKER, exc.message))
    code = next((r.exit_code for r in rows if r.exit_code), ExitCode.COMPLETED)
    app.renderer.show(Summary(rows=tuple(rows), exit_code=code))
    return code


def _failed(entry: BatchLine, outcome: str, code: ExitCode, reason: str) -> SummaryRow:
    return SummaryRow(
        line=entry.number, cp_id=entry.text, outcome=outcome, exit_code=code, reason=reason
    )
