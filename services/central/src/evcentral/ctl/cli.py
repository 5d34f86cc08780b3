"""``evctl``'s commands: parse, call the central, print (docs/operator-guide.md)."""

from __future__ import annotations

import argparse
import getpass
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from evproto.errors import AuthError, ConfigError, EvError
from evproto.service import ExitCode, version_text
from evproto.states import CpState

from evcentral.ctl.client import Central
from evcentral.ctl.completion import completion_script
from evcentral.ctl.config import Target, load_target, normalise_url, save_target
from evcentral.ctl.output import Format, print_rows

__all__ = ["build_parser", "main"]

CP_COLUMNS = ("cp_id", "state", "location", "price", "driver_id", "kwh", "eur")
SESSION_COLUMNS = (
    "session_id", "cp_id", "driver_id", "status", "outcome",
    "started_at", "ended_at", "kwh", "eur", "price", "reason",
)  # fmt: skip
HISTORY_COLUMNS = ("ts", "state", "label", "health")
OUTCOMES = ("completed", "aborted", "cancelled", "open")
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400}

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        command: Command = args.command
        return command(args)
    except AuthError as exc:
        print(f"evctl: {exc.message}", file=sys.stderr)
        return ExitCode.CREDENTIALS
    except ConfigError as exc:
        print(f"evctl: {exc.message}", file=sys.stderr)
        return ExitCode.CONFIG
    except EvError as exc:
        print(f"evctl: {exc.message}", file=sys.stderr)
        return ExitCode.FAILED
    except KeyboardInterrupt:
        return ExitCode.FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evctl",
        description="Operate an EV charging network's central from the command line.",
        epilog="The central's URL and token come from `evctl login`, or from "
        "EV_CENTRAL_URL and EV_TOKEN (which win). Exit status: 0 done, 1 failed, "
        "2 bad usage or not logged in, 3 token refused or not allowed.",
    )
    parser.add_argument(
        "--version", action="version", version=f"evctl: {version_text('evcentral')}"
    )
    parser.set_defaults(command=lambda _args: _usage(parser))
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "-o",
        "--output",
        type=Format,
        choices=list(Format),
        default=Format.TABLE,
        help="table (default), json or csv",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    login = sub.add_parser("login", help="remember the central's URL and a token (file 0600)")
    login.add_argument("--url", required=True, help="the central, e.g. http://127.0.0.1:8080")
    login.add_argument("--token", help="operator or viewer token (default: read from stdin)")
    login.set_defaults(command=_login)

    whoami = sub.add_parser(
        "whoami", help="the central and the role of the token", parents=[output]
    )
    whoami.set_defaults(command=_whoami)

    summary = sub.add_parser("summary", help="CPs per state and today's sessions", parents=[output])
    summary.set_defaults(command=_summary)

    cps = sub.add_parser(
        "cps", help="list charging points (`cps reset ID`: as `reset`)", parents=[output]
    )
    cps.add_argument("action", nargs="?", choices=("list", "reset"), default="list")
    cps.add_argument("cp_id", metavar="ID", nargs="?", help="with reset: the CP")
    cps.add_argument("--state", help="comma-separated states: " + ", ".join(s for s in CpState))
    cps.add_argument("--search", help="text in the id or the location")
    cps.set_defaults(command=_with_action(cps, {"list": _cps}, {"reset": _reset}, "cp_id"))

    cp = sub.add_parser("cp", help="one charging point and its recent states", parents=[output])
    cp.add_argument("cp_id", metavar="ID")
    cp.set_defaults(command=_cp)

    for action, verb in (("stop", "STOP (Out of Order)"), ("resume", "RESUME (back to service)")):
        one = sub.add_parser(
            action, help=f"{verb} one CP, or every CP with --all", parents=[output]
        )
        target = one.add_mutually_exclusive_group(required=True)
        target.add_argument("cp_id", metavar="ID", nargs="?")
        target.add_argument("--all", action="store_true", help="every charging point")
        one.set_defaults(command=_directive(action))

    reset = sub.add_parser(
        "reset",
        help="forget a CP's credentials so that the registration token can enroll it "
        "again (a CP whose pod lost its secret; a suspected stolen secret)",
        parents=[output],
    )
    reset.add_argument("cp_id", metavar="ID")
    reset.set_defaults(command=_reset)

    drivers = sub.add_parser(
        "drivers",
        help="driver credentials: list (no keys), add ID (as `enroll`), revoke ID",
        parents=[output],
    )
    drivers.add_argument("action", nargs="?", choices=("list", "add", "revoke"), default="list")
    drivers.add_argument("driver_id", metavar="ID", nargs="?", help="with add or revoke")
    drivers.set_defaults(
        command=_with_action(
            drivers, {"list": _drivers}, {"add": _enroll, "revoke": _revoke}, "driver_id"
        )
    )
    enroll = sub.add_parser(
        "enroll",
        help="enroll a driver; prints its secret once, for <state-dir>/<id>.secret",
        parents=[output],
    )
    enroll.add_argument("driver_id", metavar="ID")
    enroll.set_defaults(command=_enroll)
    revoke = sub.add_parser(
        "revoke", help="revoke a driver's credential (it may then enroll again)", parents=[output]
    )
    revoke.add_argument("driver_id", metavar="ID")
    revoke.set_defaults(command=_revoke)

    price = sub.add_parser("price", help="set a CP's price in €/kWh", parents=[output])
    price.add_argument("cp_id", metavar="ID")
    price.add_argument("eur", metavar="EUR", type=float, help="€/kWh, e.g. 0.35")
    price.set_defaults(command=_price)

    sessions = sub.add_parser("sessions", help="sessions, newest first", parents=[output])
    sessions.add_argument("--cp", help="only this CP")
    sessions.add_argument("--driver", help="only this driver")
    sessions.add_argument("--outcome", choices=OUTCOMES)
    sessions.add_argument("--since", type=_when, help="2026-12-01, 2026-12-01T08:00, 24h, 7d…")
    sessions.add_argument("--until", type=_when, help="as --since")
    sessions.add_argument("--limit", type=int, default=100, help="at most (default 100)")
    sessions.set_defaults(command=_sessions)

    completion = sub.add_parser("completion", help="shell completion: eval the output")
    completion.add_argument("shell", choices=("bash", "zsh"))
    completion.set_defaults(command=lambda args: _print(completion_script(parser, args.shell)))
    return parser


def _with_action(
    parser: argparse.ArgumentParser,
    bare: dict[str, Command],
    on_id: dict[str, Command],
    id_field: str,
) -> Command:
    """``evctl drivers add ID`` / ``evctl cps reset ID``: an action word, with an id where
    the action acts on one (the short forms ``enroll``, ``revoke``, ``reset`` stay)."""

    def run(args: argparse.Namespace) -> int:
        ident = getattr(args, id_field)
        if args.action in on_id:
            if ident is None:
                parser.error(f"{args.action} needs an ID")
            return on_id[args.action](args)
        if ident is not None:
            parser.error(f"unexpected ID {ident!r}: only {' and '.join(on_id)} take one")
        return bare[args.action](args)

    return run


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return ExitCode.CONFIG


def _print(text: str) -> int:
    sys.stdout.write(text)
    return ExitCode.STOPPED


def _when(text: str) -> float:
    """A time for --since/--until: ISO 8601 (UTC unless it says), epoch seconds, or an
    age like 90m, 24h, 7d."""
    text = text.strip()
    if match := _RELATIVE.match(text):
        return time.time() - float(match[1]) * _UNIT_S[match[2]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time: use 2026-12-01, 2026-12-01T08:00, epoch seconds or 24h"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


# --- commands ---------------------------------------------------------------------------


def _login(args: argparse.Namespace) -> int:
    token = args.token
    if token is None:
        token = getpass.getpass("token: ") if sys.stdin.isatty() else sys.stdin.readline()
    token = token.strip()
    if not token:
        raise ConfigError("no token given (--token, or one line on stdin)")
    target = Target(normalise_url(args.url), token)
    role = Central(target).get("/api/whoami").get("role", "?")
    path = save_target(target)
    print(f"logged in to {target.url} as {role}; saved in {path}")
    return ExitCode.STOPPED


def _whoami(args: argparse.Namespace) -> int:
    central = Central(load_target())
    answer = {"url": central.target.url, **central.get("/api/whoami")}
    print_rows([answer], ("url", "role"), args.output, raw=answer)
    return ExitCode.STOPPED


def _summary(args: argparse.Namespace) -> int:
    answer = Central(load_target()).get("/api/summary")
    rows = [{"what": f"CPs {state}", "value": n} for state, n in answer["states"].items()]
    rows += [
        {"what": "sessions open", "value": answer["sessions_open"]},
        {"what": "sessions today", "value": answer["sessions"]},
        {"what": "kWh today", "value": answer["kwh"]},
        {"what": "€ today", "value": answer["eur"]},
    ]
    print_rows(rows, ("what", "value"), args.output, raw=answer)
    return ExitCode.STOPPED


def _cps(args: argparse.Namespace) -> int:
    answer = Central(load_target()).get("/api/cps", {"state": args.state, "search": args.search})
    print_rows(answer["cps"], CP_COLUMNS, args.output, raw=answer["cps"])
    return ExitCode.STOPPED


def _cp(args: argparse.Namespace) -> int:
    central = Central(load_target())
    path = f"/api/cps/{_quoted(args.cp_id)}"
    cp = central.get(path)
    history = central.get(f"{path}/history")["history"]
    if args.output is not Format.TABLE:
        print_rows([cp], list(cp), args.output, raw={**cp, "history": history})
        return ExitCode.STOPPED
    print_rows([{"field": k, "value": v} for k, v in cp.items()], ("field", "value"), args.output)
    print("\nrecent states (newest first)")
    print_rows(history, HISTORY_COLUMNS, args.output)
    return ExitCode.STOPPED


def _directive(action: str) -> Command:
    def send(args: argparse.Namespace) -> int:
        central = Central(load_target())
        if args.all:
            answer = central.send("POST", f"/api/cps/{action}")
            row = {"cp_id": "(all)", "action": action.upper(), "affected": answer["affected"]}
        else:
            answer = central.send("POST", f"/api/cps/{_quoted(args.cp_id)}/{action}")
            row = {"cp_id": answer["cp_id"], "action": action.upper(), "affected": 1}
        print_rows([row], ("cp_id", "action", "affected"), args.output, raw=answer)
        return ExitCode.STOPPED

    return send


def _reset(args: argparse.Namespace) -> int:
    answer = Central(load_target()).send("POST", f"/api/cps/{_quoted(args.cp_id)}/reset")
    row = {"cp_id": answer["cp_id"], "action": "RESET", "state": answer["state"]}
    print_rows([row], ("cp_id", "action", "state"), args.output, raw=answer)
    return ExitCode.STOPPED


def _drivers(args: argparse.Namespace) -> int:
    answer = Central(load_target()).get("/api/drivers")
    columns = ("driver_id", "enrolled_at", "enrolled_by", "revoked_at")
    print_rows(answer["drivers"], columns, args.output, raw=answer["drivers"])
    return ExitCode.STOPPED


def _enroll(args: argparse.Namespace) -> int:
    answer = Central(load_target()).send("POST", "/api/drivers", {"driver_id": args.driver_id})
    print_rows([answer], ("driver_id", "secret"), args.output, raw=answer)
    return ExitCode.STOPPED


def _revoke(args: argparse.Namespace) -> int:
    answer = Central(load_target()).send("DELETE", f"/api/drivers/{_quoted(args.driver_id)}")
    print_rows([answer], ("driver_id", "revoked"), args.output, raw=answer)
    return ExitCode.STOPPED


def _price(args: argparse.Namespace) -> int:
    answer = Central(load_target()).send(
        "PUT", f"/api/cps/{_quoted(args.cp_id)}/price", {"price": args.eur}
    )
    print_rows([answer], ("cp_id", "price", "state"), args.output, raw=answer)
    return ExitCode.STOPPED


def _sessions(args: argparse.Namespace) -> int:
    query = {
        "cp_id": args.cp,
        "driver_id": args.driver,
        "outcome": args.outcome,
        "since": None if args.since is None else f"{args.since:.3f}",
        "until": None if args.until is None else f"{args.until:.3f}",
        "limit": str(args.limit),
    }
    central = Central(load_target())
    if args.output is Format.CSV:  # the central's own export: every column, ISO times
        sys.stdout.write(central.call("GET", "/api/sessions.csv", query=query).decode())
        return ExitCode.STOPPED
    answer: dict[str, Any] = central.get("/api/sessions", query)
    print_rows(answer["sessions"], SESSION_COLUMNS, args.output, raw=answer["sessions"])
    return ExitCode.STOPPED


def _quoted(cp_id: str) -> str:
    return quote(cp_id, safe="")
