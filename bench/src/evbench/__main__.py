"""``python -m evbench --out docs/benchmarks``: run every load step and publish the result.

Writes ``<out>.json`` (every figure) and ``<out>.md`` (the report). ``--render``
rewrites the markdown from an existing JSON without running anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evproto.messages import MAX_STATUS_INTERVAL, MIN_STATUS_INTERVAL

from evbench.plan import DEFAULT_OCPP_STEPS, DEFAULT_STEPS, BenchOptions, StepSpec
from evbench.report import render_markdown, summarize_run
from evbench.run import BenchError, run_benchmark


def _step(part: str) -> StepSpec:
    """``CPS`` or ``CPS@INTERVAL`` (the heartbeat interval the central names, seconds)."""
    cps_text, at, interval_text = part.partition("@")
    cps = int(cps_text)
    if cps < 1:
        raise ValueError("every step needs at least 1 CP")
    if not at:
        return cps
    interval = float(interval_text)
    if not MIN_STATUS_INTERVAL <= interval <= MAX_STATUS_INTERVAL:
        raise ValueError(f"an interval is {MIN_STATUS_INTERVAL:g} to {MAX_STATUS_INTERVAL:g} s")
    return (cps, interval)


def _steps(text: str) -> tuple[StepSpec, ...]:
    try:
        return tuple(_step(part) for part in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: steps are comma-separated CPS or CPS@INTERVAL ({exc})"
        ) from None


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError("every step needs at least 1")
    return counts


def _findings(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evbench", description=__doc__)
    parser.add_argument(
        "--out",
        type=Path,
        help="path without suffix: writes OUT.json and OUT.md (default docs/benchmarks)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("bench-out"),
        help="broker, central database, logs and raw step results",
    )
    parser.add_argument(
        "--steps",
        type=_steps,
        default=DEFAULT_STEPS,
        help="CPs per step, comma-separated (default 1000,2000,5000,10000; steps above "
        "10,000 run with the central's 5 s heartbeat interval; CPS@S names the interval, "
        "e.g. 10000@5)",
    )
    d = BenchOptions()
    parser.add_argument("--session-s", type=float, default=d.session_s, help="supply seconds")
    parser.add_argument("--heartbeat-window", type=float, default=d.heartbeat_window)
    parser.add_argument("--duration", type=float, default=d.session_window, help="seconds")
    parser.add_argument("--bare-window", type=float, default=d.bare_window)
    parser.add_argument("--no-profile", action="store_true", help="skip py-spy on the central")
    parser.add_argument(
        "--no-instructions",
        action="store_true",
        help="skip the noise-free costs (about 5 min): instructions under callgrind per "
        "heartbeat (bare, framed, central) and per authorization and telemetry (central), "
        "and the embedded broker's CPU per hop by the batches it holds",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument(
        "--ocpp-steps",
        type=_counts,
        default=DEFAULT_OCPP_STEPS,
        help="OCPP stations per step of the gateway's step, ascending (default 250,500,1000,2000)",
    )
    parser.add_argument("--no-ocpp", action="store_true", help="skip the OCPP gateway's step")
    parser.add_argument(
        "--only",
        choices=("ocpp",),
        help="run one step alone (ocpp: no CP steps, no callgrind, no py-spy); without "
        "--out the result goes to WORKDIR/only-STEP.json and .md, not to docs/",
    )
    parser.add_argument(
        "--no-references",
        action="store_true",
        help="skip the bare and FramedConnection servers' loads (a quicker probe of a step)",
    )
    parser.add_argument(
        "--findings",
        type=Path,
        default=Path("bench/findings.md"),
        help="hand-written analysis put into the report when the file exists",
    )
    parser.add_argument(
        "--render", action="store_true", help="only rewrite OUT.md from an existing OUT.json"
    )
    args = parser.parse_args(argv)
    if args.out is None:
        only = args.workdir / f"only-{args.only}"
        args.out = only if args.only and not args.render else Path("docs/benchmarks")
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    if args.render:
        stored = json.loads(json_path.read_text())
        summary = {**summarize_run(stored["raw"], Path.cwd()), "machine": stored["machine"]}
        json_path.write_text(json.dumps(summary, indent=1) + "\n")
        md_path.write_text(render_markdown(summary, _findings(args.findings)))
        return 0
    only_ocpp = args.only == "ocpp"
    options = BenchOptions(
        steps=() if only_ocpp else args.steps,
        session_s=args.session_s,
        heartbeat_window=args.heartbeat_window,
        session_window=args.duration,
        bare_window=args.bare_window,
        profile=not (args.no_profile or only_ocpp),
        instructions=not (args.no_instructions or only_ocpp),
        pin=not args.no_pin,
        ocpp_steps=() if args.no_ocpp else tuple(sorted(args.ocpp_steps)),
        references=not args.no_references,
    )
    try:
        raw = run_benchmark(options, args.workdir)
    except BenchError as exc:
        print(f"evbench: {exc.message}", file=sys.stderr)
        return 1
    summary = summarize_run(raw, Path.cwd())
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary, indent=1) + "\n")
    md_path.write_text(render_markdown(summary, _findings(args.findings)))
    print(f"evbench: wrote {md_path} and {json_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
