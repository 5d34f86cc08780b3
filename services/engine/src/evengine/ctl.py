"""`evengine ctl ko|ok|plug|unplug|status|supply`: drive a running engine.

For pods without a terminal: ``kubectl exec … -c engine -- evengine ctl ko``.
Exit codes: 0 done, 1 no engine answers on the socket, 2 bad usage, 3 the
engine refused (the reason is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys

from evproto.config import SettingsParser
from evproto.errors import EvError
from evproto.service import add_version_flag
from evproto.vocabulary import DEFAULT_CONTROL_SOCKET

from evengine.control import MAX_ANSWER_BYTES, ControlAnswer, ControlCommand

__all__ = ["main", "send_command"]

EXIT_DONE, EXIT_NO_ENGINE, EXIT_REFUSED = 0, 1, 3
_ANSWER_TIMEOUT = 15.0
# A manual supply is answered when the central decides, or at --manual-timeout (<= 3600 s).
_SUPPLY_ANSWER_TIMEOUT = 3700.0


def send_command(path: str, command: ControlCommand, timeout: float | None = None) -> ControlAnswer:
    """One request to the engine at ``path``; EvError when no engine answers there."""
    wait = timeout or (
        _SUPPLY_ANSWER_TIMEOUT if command is ControlCommand.SUPPLY else _ANSWER_TIMEOUT
    )
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            raise EvError(
                f"no engine listens on {path} (is it running? set --control-socket "
                "or EV_CONTROL_SOCKET to its socket)"
            ) from None
        except OSError as exc:
            raise EvError(f"cannot reach the engine at {path}: {exc.strerror or exc}") from None
        try:
            sock.sendall(json.dumps({"command": command.value}).encode() + b"\n")
            sock.settimeout(wait)
            line = _read_line(sock)
        except TimeoutError:
            raise EvError(f"the engine at {path} did not answer within {wait:g} s") from None
        except OSError as exc:
            raise EvError(f"the engine at {path} dropped the request: {exc}") from None
    return ControlAnswer.decode(line)


def _read_line(sock: socket.socket) -> bytes:
    buf = bytearray()
    while not buf.endswith(b"\n"):
        chunk = sock.recv(65536)
        if not chunk:
            raise EvError("the engine closed the connection without an answer")
        buf += chunk
        if len(buf) > MAX_ANSWER_BYTES:
            raise EvError(f"the engine's answer is larger than {MAX_ANSWER_BYTES} bytes")
    return bytes(buf)


def build_parser() -> argparse.ArgumentParser:
    parser = SettingsParser(
        prog="evengine ctl",
        description="Drive a running engine through its control socket: ko/ok simulate a "
        "fault and clear it, plug/unplug the vehicle, status shows state, session, kWh and €, "
        "supply asks the central for a manual supply and waits for its answer.",
        epilog="Exit codes: 0 done, 1 no engine answers on the socket, 2 bad usage, "
        "3 the engine refused (the reason is printed).",
    )
    parser.add_argument("command", choices=[c.value for c in ControlCommand])
    parser.add_argument(
        "--control-socket",
        metavar="PATH",
        default=os.environ.get("EV_CONTROL_SOCKET") or DEFAULT_CONTROL_SOCKET,
        help="the engine's control socket [env EV_CONTROL_SOCKET] (default: %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as JSON")
    add_version_flag(parser, "evengine")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    command = ControlCommand(args.command)
    try:
        answer = send_command(args.control_socket, command)
    except EvError as exc:
        print(f"evengine ctl: {exc.message}", file=sys.stderr)
        return EXIT_NO_ENGINE
    if args.json:
        print(json.dumps({"ok": answer.ok, "message": answer.message, "status": answer.status}))
    else:
        print(answer.message)  # the engine's answer, refusal or not, is the output
    return EXIT_DONE if answer.ok else EXIT_REFUSED
