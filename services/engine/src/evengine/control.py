"""The control socket: how `evengine ctl` drives an engine that has no terminal.

A Unix socket (mode 0600) at ``--control-socket``. One request per connection:
a JSON line ``{"command": "ko"}``, read with a size bound and a timeout, answered
by one JSON line ``{"ok": true, "message": "...", "status": {...}}``. A bad
request gets ``ok: false`` with the reason, is counted and logged, and the
engine keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evproto.errors import ConfigError, EvError
from evproto.logs import kv
from evproto.vocabulary import LinkErrorKind

from evengine.metrics import EngineMetrics

__all__ = [
    "MAX_ANSWER_BYTES",
    "MAX_REQUEST_BYTES",
    "ControlAnswer",
    "ControlCommand",
    "ControlServer",
    "parse_request",
]

log = logging.getLogger("evengine.control")

MAX_REQUEST_BYTES = 1024
MAX_ANSWER_BYTES = 256 * 1024
REQUEST_TIMEOUT = 5.0  # seconds a client has to send its request line


class ControlCommand(enum.StrEnum):
    KO = "ko"  # simulate a fault
    OK = "ok"  # clear it
    PLUG = "plug"
    UNPLUG = "unplug"
    STATUS = "status"
    SUPPLY = "supply"  # a manual supply (M12)


_COMMANDS = frozenset(c.value for c in ControlCommand)


@dataclass(frozen=True, slots=True)
class ControlAnswer:
    ok: bool
    message: str
    status: dict[str, Any] | None = field(default=None)

    def encode(self) -> bytes:
        body = {"ok": self.ok, "message": self.message, "status": self.status}
        return json.dumps(body, ensure_ascii=False).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> ControlAnswer:
        try:
            data = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise EvError(f"the engine's answer is not JSON: {exc}") from None
        if not (
            isinstance(data, dict)
            and isinstance(data.get("ok"), bool)
            and isinstance(data.get("message"), str)
            and isinstance(data.get("status"), dict | None)
        ):
            raise EvError("the engine's answer lacks ok/message")
        return cls(data["ok"], data["message"], data["status"])


def parse_request(line: bytes) -> ControlCommand:
    """``{"command": "ko"}`` -> the command, or an EvError saying what is wrong."""
    try:
        data = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise EvError('a request is one JSON line like {"command": "status"}') from None
    command = data.get("command") if isinstance(data, dict) else None
    if isinstance(command, str) and command in _COMMANDS:
        return ControlCommand(command)
    known = ", ".join(sorted(_COMMANDS))
    raise EvError(f"unknown command {str(command)[:40]!r}; known: {known}")


Execute = Callable[[ControlCommand], Awaitable[ControlAnswer]]


class ControlServer:
    def __init__(self, path: Path, execute: Execute, metrics: EngineMetrics, cp_id: str) -> None:
        self.path = path
        self._execute = execute
        self._metrics = metrics
        self._cp_id = cp_id
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        _clear_stale_socket(self.path)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, self.path, limit=MAX_REQUEST_BYTES
            )
            os.chmod(self.path, 0o600)  # only this user drives the engine
        except OSError as exc:
            raise EvError(
                f"cannot open the control socket {self.path}: {exc.strerror or exc}"
            ) from None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            answer = await self._answer(reader)
            writer.write(answer.encode())
            await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT)
        except (OSError, TimeoutError):
            pass  # the client went away; nothing to tell it
        finally:
            writer.close()
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _answer(self, reader: asyncio.StreamReader) -> ControlAnswer:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), REQUEST_TIMEOUT)
            command = parse_request(line)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            return self._refuse(_read_problem(exc))
        except EvError as exc:
            return self._refuse(exc.message)
        log.info("control command %s", kv(cp=self._cp_id, command=command.value))
        return await self._execute(command)

    def _refuse(self, why: str) -> ControlAnswer:
        self._metrics.protocol_error(LinkErrorKind.CONTROL_REQUEST)
        log.warning("bad control request %s", kv(cp=self._cp_id, error=why))
        return ControlAnswer(False, f"bad request: {why}")

    async def close(self) -> None:
        if self._server is None:
            return  # never opened: the path may be another engine's socket
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 2.0)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


def _read_problem(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no complete request line within {REQUEST_TIMEOUT:g} s"
    if isinstance(exc, asyncio.LimitOverrunError):
        return f"request longer than {MAX_REQUEST_BYTES} bytes"
    return "the request line did not end with a newline"


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket left by an engine that died; refuse to take over a live one."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ConfigError(f"--control-socket {path} exists and is not a socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink(missing_ok=True)
            return
    raise ConfigError(f"--control-socket {path}: another engine is listening there")
