"""Rows printed as a table for people, JSON for programs or CSV for spreadsheets."""

from __future__ import annotations

import csv
import enum
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["Format", "print_rows"]


class Format(enum.StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


_TIME_FIELDS = frozenset({"ts", "last_seen", "authorized_at", "started_at", "ended_at", "since"})


def _cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name in _TIME_FIELDS and isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value % 1 else str(int(value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def print_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    raw: Any = None,
    out: TextIO | None = None,
) -> None:
    """``raw`` (default: the rows) is what ``-o json`` prints, whole."""
    out = out or sys.stdout
    if fmt is Format.JSON:
        json.dump(rows if raw is None else raw, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    table = [[_cell(c, row.get(c)) for c in columns] for row in rows]
    if fmt is Format.CSV:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(table)
        return
    widths = [max([len(c), *(len(r[i]) for r in table)]) for i, c in enumerate(columns)]
    lines = [[c.upper() for c in columns], *table]
    for line in lines:
        out.write("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() + "\n")
