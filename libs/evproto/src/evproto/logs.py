"""Logging: one line per event, with the CP / driver / session ids as fields.

Call sites write ``log.info("supply authorized %s", kv(cp=cp_id, driver=driver_id))``.
In the text format (the default) that is ``… supply authorized cp=CP-1 driver=D1``
with every control character escaped, so one event is always one line; in the
JSON format (``--log-format json``) it is one object per line with ``ts``,
``level``, ``component``, ``message`` and each :func:`kv` field as its own key.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

__all__ = ["LOG_FORMATS", "Fields", "kv", "one_line", "setup_logging"]

LOG_FORMATS = ("text", "json")
_RESERVED = frozenset({"ts", "level", "component", "logger", "message", "traceback"})
# C0/C1 controls, DEL and the Unicode line/paragraph separators: each would break a line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SPACES = re.compile(r" {2,}")


def one_line(text: str) -> str:
    """``text`` with newlines and other control characters escaped (``\\n``, ``\\x1b``)."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(char) or f"\\x{ord(char):02x}"

    return _CONTROL.sub(escape, text)


class Fields(str):
    """What :func:`kv` returns: the ``key=value`` text, and the fields themselves."""

    fields: dict[str, object]

    def __new__(cls, fields: dict[str, object]) -> Fields:
        parts = []
        for key, value in fields.items():
            text = str(value).replace("\n", "\\n").replace("\r", "\\r")
            if " " in text or not text:
                text = repr(text)
            parts.append(f"{key}={text}")
        made = super().__new__(cls, " ".join(parts))
        made.fields = fields
        return made


def kv(**fields: object) -> Fields:
    """``cp=CP-1 driver=D1`` with None skipped and values kept on one line."""
    return Fields({key: value for key, value in fields.items() if value is not None})


def _utc(created: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{stamp}.{int(created % 1 * 1000):03d}Z"


class _TextFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record.created)} {record.levelname} {self._component} "
        line += one_line(record.getMessage())
        if record.exc_info:
            line += " error=" + one_line(self.formatException(record.exc_info))
        return line


class _JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, object] = {}
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, Fields) for a in args):
            for arg in args:
                if isinstance(arg, Fields):
                    fields.update(arg.fields)
            # the message without its key=value part: the fields are keys of their own
            bare = tuple("" if isinstance(a, Fields) else a for a in args)
            message = _SPACES.sub(" ", str(record.msg) % bare).strip()
        else:
            message = record.getMessage()
        event: dict[str, Any] = {
            "ts": _utc(record.created),
            "level": record.levelname,
            "component": self._component,
            "logger": record.name,
            "message": message,
        }
        for key, value in fields.items():
            name = f"field_{key}" if key in _RESERVED else key
            event[name] = value if isinstance(value, int | float | bool | str) else str(value)
        if record.exc_info:
            event["traceback"] = self.formatException(record.exc_info)
        return json.dumps(event, default=str)  # ASCII: no character can split the line


def setup_logging(component: str, level: str = "INFO", log_format: str = "text") -> None:
    """Route every log record to stderr, one line per event, in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    formatter: logging.Formatter = (
        _JsonFormatter(component) if log_format == "json" else _TextFormatter(component)
    )
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
