"""Logging: one line per event, with the CP / driver / session ids as key=value."""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["kv", "setup_logging"]


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


def setup_logging(component: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_UtcFormatter(f"%(asctime)s %(levelname)s {component} %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def kv(**fields: object) -> str:
    """``cp=CP-1 driver=D1`` with None skipped and values kept on one line."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = str(value).replace("\n", "\\n").replace("\r", "\\r")
        if " " in text or not text:
            text = repr(text)
        parts.append(f"{key}={text}")
    return " ".join(parts)
