"""The published result: ``docs/benchmarks.json`` (everything) and ``docs/benchmarks.md``.

:func:`summarize_run` turns the raw results of :func:`evbench.run.run_benchmark`
into one row per step and a verdict per target; :func:`render_markdown` writes
the page from that JSON alone, so ``python -m evbench --render`` can redo it.
"""

from __future__ import annotations

import itertools
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from evbench.plan import SAMPLE_READERS_UP_TO, TARGETS, interval_for
from evbench.stats import growth_per_1000

__all__ = ["machine_info", "render_markdown", "summarize_ocpp", "summarize_run"]


_MEASURED = (
    "bench",
    "services/central",
    "services/ocpp",
    "libs/evproto",
)  # the code a run measures


def machine_info(repo: Path) -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kb = 0

    def git(*args: str) -> str:
        try:
            out = subprocess.run(
                ["git", *args], cwd=repo, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return "unknown"
        return out.stdout.rstrip("\n")

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "commit": git("rev-parse", "--short=12", "HEAD"),
        "dirty": sorted(
            {
                "/".join(line[3:].split("/")[:2])
                for line in git("status", "--porcelain", "--", *_MEASURED).splitlines()
                if line.strip()
            }
        ),
    }


def _get(data: dict[str, Any], *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)  # type: ignore[assignment]
    return data


def _errors(result: dict[str, Any]) -> dict[str, int]:
    """Every count that must be zero, with the non-zero ones kept."""
    mon = result.get("monitors", {})
    ses = result.get("sessions", {})
    ledger = ses.get("ledger", {})
    engine = ses.get("engine", {})
    dash = result.get("dashboard", {})
    counts = {
        "connect_failed": mon.get("connect_failed", 0),
        "connect_gave_up": mon.get("gave_up", 0),
        "auth_rejected": mon.get("rejected", 0),
        "links_closed_by_central": mon.get("closed_by_peer", 0),
        "frames_nacked": mon.get("nacked", 0),
        "frames_failed": mon.get("send_failed", 0),
        "bad_frames_from_central": mon.get("bad_frames", 0),
        "probe_timeouts": dash.get("timeouts", 0),
        "requests_unanswered": ses.get("unanswered", 0),
        "requests_denied": sum(ses.get("denied", {}).values()),
        "driver_error_updates": sum(ses.get("driver_errors", {}).values()),
        "duplicate_responses": ses.get("duplicate_responses", 0),
        "unknown_responses": ses.get("unknown_responses", 0),
        "missing_tickets": ledger.get("missing_tickets", 0),
        "duplicate_tickets": ledger.get("duplicate_tickets", 0),
        "unknown_tickets": ledger.get("unknown_tickets", 0),
        "telemetry_seq_gaps": ledger.get("seq_gaps", 0),
        "telemetry_seq_duplicates": ledger.get("seq_duplicates", 0),
        "engine_duplicate_starts": engine.get("duplicate_starts", 0),
        "engine_busy_starts": engine.get("busy_starts", 0),
        "engine_double_tickets": engine.get("sessions_with_more_than_one_ticket", 0),
        "publish_failures": engine.get("publish_failures", 0),
    }
    return {k: v for k, v in counts.items() if v}


_LOST_OR_DUPLICATED = (
    "requests_unanswered",
    "duplicate_responses",
    "missing_tickets",
    "duplicate_tickets",
    "unknown_tickets",
    "telemetry_seq_gaps",
    "telemetry_seq_duplicates",
    "engine_double_tickets",
)


def _step_row(step: dict[str, Any], idle_rss: float) -> dict[str, Any]:
    central = step["central"]
    lg = central["loadgen"]
    ses = lg.get("sessions", {})
    hb = central["heartbeat_window"]
    sw = central.get("sessions_window") or {}
    bare = step["bare"]
    ratio = None
    if hb.get("us_per_heartbeat") and bare.get("us_per_heartbeat"):
        ratio = hb["us_per_heartbeat"] / bare["us_per_heartbeat"]
    errors = _errors(lg)
    rss = hb.get("rss_mb")
    machine = (step.get("machine_cores") or {}).get("sessions")
    ours = [
        sw.get("cores"),
        step["broker"].get("cores"),
        _get(lg, "windows", "sessions", "loadgen_cores"),
    ]
    others = machine - sum(c for c in ours if c) if machine is not None else None
    held = lg.get("held", 0)
    samples = ses.get("sample_readers", [])
    sample = {s["design"]: s.get("per_meant") for s in samples}
    return {
        "cps": step["step"]["cps"],
        "heartbeat_interval": step.get("heartbeat_interval", 1.0),
        "killed_cp": lg.get("killed_cp"),
        "held": held,
        "held_at_end": lg.get("held_at_end"),
        "ramp_s": lg.get("ramp_s"),
        "dashboard": lg.get("dashboard", {}),
        "heartbeat_ack": _get(lg, "monitors", "ack_rtt"),
        "heartbeats_late": _get(lg, "monitors", "late"),
        "authorization": ses.get("authorization", {}),
        "request_rate": step["step"]["rate"],
        "requests": ses.get("requests"),
        "telemetry": ses.get("telemetry", {}),
        "split_at_central": ses.get("split_at_central", {}),
        "central_loop_lag": _get(central, "loop_lag", "sessions"),
        "broker_echo": lg.get("broker_echo", {}),
        "sessions_target": step["step"]["sessions"],
        "concurrent_mean": ses.get("concurrent_mean"),
        "concurrent_max": ses.get("concurrent_max"),
        "tickets": _get(ses, "ledger", "tickets"),
        "central_cores_heartbeat": hb.get("cores"),
        "central_cores_sessions": sw.get("cores"),
        "central_rss_mb": rss,
        "central_peak_rss_mb": central.get("peak_rss_mb"),
        "central_kb_per_cp": (rss - idle_rss) * 1024 / held if rss and held else None,
        "central_us_per_heartbeat": hb.get("us_per_heartbeat"),
        "central_us_spread": hb.get("us_per_heartbeat_slices"),
        "bare_us_spread": bare.get("us_per_heartbeat_slices"),
        "framed_us_spread": step.get("framed", {}).get("us_per_heartbeat_slices"),
        "bare_us_per_heartbeat": bare.get("us_per_heartbeat"),
        "bare_cores": bare.get("cores"),
        "framed_us_per_heartbeat": step.get("framed", {}).get("us_per_heartbeat"),
        "heartbeat_cost_ratio": ratio,
        "heartbeats_per_s": hb.get("heartbeats_per_s"),
        "broker_cores_sessions": step["broker"].get("cores"),
        "machine_cores_sessions": machine,
        "other_cores_sessions": max(0.0, others) if others is not None else None,
        "load_average": step.get("load_average"),
        "loadgen_cores_heartbeat": _get(lg, "windows", "heartbeat", "loadgen_cores"),
        "loadgen_cores_sessions": _get(lg, "windows", "sessions", "loadgen_cores"),
        "proof_cost_us": ses.get("proof_cost_us") or {},
        "reads_per_meant": ses.get("reads_per_meant", {}),
        "sample_reads_per_meant": sample,
        "errors": errors,
        "lost_or_duplicated": sum(errors.get(k, 0) for k in _LOST_OR_DUPLICATED),
    }


def _rss_increments(rows: list[dict[str, Any]]) -> list[float]:
    """The central's resident memory added per 1,000 more CPs, from each step to the next."""
    return [
        (b["central_rss_mb"] - a["central_rss_mb"]) / (b["held"] - a["held"]) * 1000
        for a, b in itertools.pairwise(rows)
        if a["central_rss_mb"] and b["central_rss_mb"] and b["held"] > a["held"]
    ]


def _kept_up(row: dict[str, Any]) -> bool:
    """The central ACKed (nearly) every heartbeat: its cost compares with the bare server's."""
    rate = row.get("heartbeats_per_s")
    return bool(rate and row["held"] and rate >= 0.95 * row["held"])


def _cps(row: dict[str, Any]) -> str:
    """``10,000``, or ``10,000 @ 5 s`` for a step run at an interval its size does not get."""
    interval = row.get("heartbeat_interval", 1.0)
    if interval == interval_for(row["cps"]):
        return f"{row['cps']:,}"
    return f"{row['cps']:,} @ {interval:g} s"


def _latency_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The steps the latency targets are judged on: up to 10,000 CPs, at 1 Hz."""
    return [
        r
        for r in rows
        if r["cps"] <= TARGETS["connected_cps"] and r.get("heartbeat_interval", 1.0) == 1.0
    ]


def _verdict(value: float | None, target: float, *, at_most: bool) -> dict[str, Any]:
    if value is None:
        return {"value": None, "target": target, "met": False, "by": None}
    met = value <= target if at_most else value >= target
    by = (value - target) / target if not met else None
    return {"value": value, "target": target, "met": met, "by": by}


def summarize_run(raw: dict[str, Any], repo: Path) -> dict[str, Any]:
    idle_rss = raw["baseline"].get("central_idle_rss_mb") or 0.0
    completed = [s for s in raw["steps"] if "error" not in s]
    failed = [{"cps": s["step"]["cps"], "error": s["error"]} for s in raw["steps"] if "error" in s]
    rows = [_step_row(s, idle_rss) for s in completed]
    rss_points = [(r["held"], r["central_rss_mb"]) for r in rows if r["central_rss_mb"]]
    cpu_points = [
        (r["held"], r["central_cores_heartbeat"]) for r in rows if r["central_cores_heartbeat"]
    ]
    increments = _rss_increments(rows)
    # a saturated central's memory also holds its backlog: judge flatness without it
    kept_up_increments = _rss_increments([r for r in rows if _kept_up(r)])
    last = rows[-1] if rows else {}

    def worst(key: str, sub: str | None = None, among: list[Any] | None = None) -> float | None:
        values = [(r[key].get(sub) if sub else r[key]) for r in (rows if among is None else among)]
        present = [v for v in values if v is not None]
        return max(present) if present else None

    def met_up_to(key: str, sub: str, target: float) -> int | None:
        """The largest step up to which every step met an at-most target."""
        reached = None
        for r in _latency_rows(rows):
            value = r[key].get(sub)
            if value is None or value > target:
                break
            reached = r["cps"]
        return reached

    cores = [v for r in rows for v in (r["central_cores_heartbeat"], r["central_cores_sessions"])]
    costs = raw["baseline"].get("costs") or {}
    verdicts = {
        "connected_cps": _verdict(
            max((r["held"] for r in rows if r.get("heartbeat_interval", 1.0) == 1.0), default=None),
            TARGETS["connected_cps"],
            at_most=False,
        ),
        "concurrent_sessions": _verdict(
            last.get("concurrent_mean"), TARGETS["concurrent_sessions"] * 0.95, at_most=False
        ),
        "authorization_p99_ms": {
            **_verdict(
                worst("authorization", "p99_ms", _latency_rows(rows)),
                TARGETS["authorization_p99_ms"],
                at_most=True,
            ),
            "met_up_to": met_up_to("authorization", "p99_ms", TARGETS["authorization_p99_ms"]),
        },
        "telemetry_p99_ms": {
            **_verdict(
                worst("telemetry", "p99_ms", _latency_rows(rows)),
                TARGETS["telemetry_p99_ms"],
                at_most=True,
            ),
            "met_up_to": met_up_to("telemetry", "p99_ms", TARGETS["telemetry_p99_ms"]),
        },
        "central_cores": _verdict(
            max((c for c in cores if c is not None), default=None),
            TARGETS["central_cores"],
            at_most=True,
        ),
        "central_rss_mb": _verdict(
            worst("central_peak_rss_mb"), TARGETS["central_rss_mb"], at_most=True
        ),
        "heartbeat_cost_ratio": {
            **_verdict(_cost_ratio(costs, rows), TARGETS["heartbeat_cost_ratio"], at_most=True),
            "from": "instructions" if costs.get("central_x_bare") else "cpu_time",
        },
        "killed_cp_detected": _detection_verdict(rows),
        "memory_per_cp_flat": {
            "value": kept_up_increments,
            "all_steps": increments,
            "target": "MB per 1,000 more CPs, step to step, within 2x of each other",
            "met": bool(kept_up_increments)
            and max(kept_up_increments) <= 2 * max(min(kept_up_increments), 0.5),
            "by": None,
        },
        "nothing_lost_or_duplicated": {
            "value": sum(r["lost_or_duplicated"] for r in rows),
            "target": 0,
            "met": all(not r["errors"] for r in rows),
            "by": None,
        },
    }
    return {
        "generated_at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(raw["started_at"])),
        "duration_s": raw["seconds"],
        "machine": machine_info(repo),
        "options": raw["options"],
        "baseline": raw["baseline"],
        "costs": costs,
        "pinning": raw.get("pinning") or {},
        "targets": TARGETS,
        "steps": rows,
        "growth_per_1000_cps": {
            "central_rss_mb": growth_per_1000(rss_points),
            "central_cores": growth_per_1000(cpu_points),
            "rss_increments_mb": increments,
        },
        "verdicts": verdicts,
        "failed_steps": failed,
        "profile": completed[-1].get("profile", {}) if completed else {},
        "ocpp": summarize_ocpp(raw.get("ocpp")),
        "raw": raw,
    }


def _cost_ratio(costs: dict[str, Any], rows: list[dict[str, Any]]) -> float | None:
    """Central ÷ bare per heartbeat: from instructions when counted, else from CPU time
    (the worst step the central kept up with)."""
    counted = costs.get("central_x_bare")
    if counted:
        return float(counted)
    return max(
        (r["heartbeat_cost_ratio"] for r in rows if r["heartbeat_cost_ratio"] and _kept_up(r)),
        default=None,
    )


# a dropped link is seen at once (R3: within 3 s); a silent one after missed × interval,
# plus the dashboard's 250 ms coalescing and the idle timer's granularity
DROPPED_BOUND_S = 3.0
SILENT_SLACK_S = 1.0


def _detection_verdict(rows: list[dict[str, Any]]) -> dict[str, Any]:
    measured = [r["killed_cp"] for r in rows if r.get("killed_cp")]
    worst_dropped = max((k["dropped_s"] or float("inf") for k in measured), default=None)
    met = bool(measured) and all(
        k["dropped_s"] is not None
        and k["dropped_s"] <= DROPPED_BOUND_S
        and k["silent_s"] is not None
        and k["silent_s"] <= k["bound_s"] + SILENT_SLACK_S
        for k in measured
    )
    return {
        "value": worst_dropped,
        "silent_s": [k["silent_s"] for k in measured],
        "bounds_s": [k["bound_s"] for k in measured],
        "target": DROPPED_BOUND_S,
        "met": met,
        "by": None,
    }


# --- markdown ---------------------------------------------------------------------


def _f(value: Any, digits: int = 1, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def _pair(summary: dict[str, Any]) -> str:
    if not summary or not summary.get("count"):
        return "–"
    return f"{_f(summary.get('p50_ms'))} / {_f(summary.get('p99_ms'))}"


_VERDICT_LABELS = {
    "connected_cps": ("connected CPs held at 1 Hz", "", 0),
    "concurrent_sessions": ("concurrent sessions (mean over the window, ≥ 95 % of 1,000)", "", 0),
    "authorization_p99_ms": ("authorization p99, worst step up to 10,000 CPs at 1 Hz", " ms", 1),
    "telemetry_p99_ms": ("telemetry end-to-end p99, worst step up to 10,000 CPs at 1 Hz", " ms", 1),
    "central_cores": ("central CPU, worst window", " cores", 2),
    "central_rss_mb": ("central resident memory, peak", " MB", 0),
    "heartbeat_cost_ratio": (
        "central instructions per heartbeat ÷ bare server's (callgrind; else CPU time)",
        "×",
        2,
    ),
}


def _verdict_rows(verdicts: dict[str, Any]) -> list[str]:
    lines = ["| target | goal | result | met |", "|---|---|---|---|"]
    for key, (label, unit, digits) in _VERDICT_LABELS.items():
        v = verdicts[key]
        goal = ("≤ " if key not in ("connected_cps", "concurrent_sessions") else "≥ ") + _f(
            v["target"], digits, unit
        )
        missed = "" if v["met"] or v["by"] is None else f" (off by {abs(v['by']) * 100:.0f} %"
        if missed:
            up_to = v.get("met_up_to")
            missed += f"; met up to {up_to:,} CPs)" if up_to else ")"
        mark = "yes" if v["met"] else f"**no**{missed}"
        lines.append(f"| {label} | {goal} | {_f(v['value'], digits, unit)} | {mark} |")
    flat = verdicts["memory_per_cp_flat"]
    incs = ", ".join(_f(i, 1, " MB") for i in flat["value"]) or "–"
    every = ", ".join(_f(i, 1) for i in flat.get("all_steps", []))
    lines.append(
        f"| memory per CP flat, over the steps the central kept up with | {flat['target']} | "
        f"{incs} (every step: {every}) | {'yes' if flat['met'] else '**no**'} |"
    )
    killed = verdicts.get("killed_cp_detected")
    if killed is not None:
        silent = ", ".join(
            f"{_f(v, 1)} ≤ {_f(b, 0)}"
            for v, b in zip(killed["silent_s"], killed["bounds_s"], strict=True)
        )
        lines.append(
            f"| killed CP shown DISCONNECTED: link reset within {DROPPED_BOUND_S:.0f} s, "
            f"silent link within missed × interval (+{SILENT_SLACK_S:.0f} s) | every step | "
            f"reset: worst {_f(killed['value'], 2, ' s')}; silent: {silent or '–'} s | "
            f"{'yes' if killed['met'] else '**no**'} |"
        )
    clean = verdicts["nothing_lost_or_duplicated"]
    lines.append(
        f"| errors, lost or duplicated messages | 0 | {clean['value']} lost/duplicated"
        f"{'' if clean['met'] else ' (and other errors: see below)'} | "
        f"{'yes' if clean['met'] else '**no**'} |"
    )
    return lines


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for window, summary in profile.items():
        if not summary or "self" not in summary:
            if summary and summary.get("error"):
                lines.append(f"- {window} window: py-spy failed: {summary['error']}")
            continue
        lines.append(
            f"\n**{window} window** ({summary['samples']:,} samples), top functions by own time:\n"
        )
        lines.append("| own | inclusive | function |")
        lines.append("|---|---|---|")
        for name, share, inclusive in summary["self"][:12]:
            lines.append(f"| {share * 100:.1f} % | {inclusive * 100:.1f} % | `{name}` |")
        lines.append("\nTop functions by inclusive time (they or their callees were running):\n")
        lines.append("| inclusive | function |")
        lines.append("|---|---|")
        for name, inclusive in summary["inclusive"][:12]:
            lines.append(f"| {inclusive * 100:.1f} % | `{name}` |")
    return lines


def _split_row(row: dict[str, Any]) -> str:
    split = row["split_at_central"]
    cells = (
        _pair(split.get(k, {}))
        for k in (
            "authorization_until",
            "authorization_after",
            "telemetry_until",
            "telemetry_after",
        )
    )
    lag = row.get("central_loop_lag") or {}
    lag_cell = (
        f"≤ {_ms(lag.get('p50_ms'))} / ≤ {_ms(lag.get('p99_ms'))} / ≤ {_ms(lag.get('max_ms'))}"
        if lag
        else "–"
    )
    echo = _pair(row.get("broker_echo") or {})
    return f"| {_cps(row)} | " + " | ".join(cells) + f" | {echo} | {lag_cell} |"


def _ms(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞" if value == float("inf") else f"{value:g}"


def _us(mean: float | None, spread: dict[str, Any] | None) -> str:
    """The median over the window's slices with its range; the window's mean without them."""
    if not spread or not spread.get("n"):
        return _f(mean)
    return f"{_f(spread['median'])} ({_f(spread['min'])}–{_f(spread['max'])})"


def _per_core(us_per_heartbeat: float | None) -> str:
    """How many CPs reporting once a second one fully busy core could serve at this cost."""
    if not us_per_heartbeat:
        return "–"
    return f"{round(1e6 / us_per_heartbeat, -2):,.0f}"


def _pinning_line(pinning: dict[str, Any]) -> str:
    cores = pinning.get("cores") or {}
    if not pinning.get("active") or not cores:
        return "Broker (embedded Tansu), central and load generator share the machine's cores."
    where = ", ".join(f"{role} on core {','.join(map(str, c))}" for role, c in cores.items())
    failed = "; ".join(f"{r}: {e}" for r, e in (pinning.get("failures") or {}).items())
    tail = f" (failed: {failed})" if failed else ""
    return f"Pinned with `taskset`/`sched_setaffinity`: {where}{tail}."


def _instruction_lines(costs: dict[str, Any]) -> list[str]:
    if not costs or "workload" not in costs:
        reason = costs.get("error") if costs else "not counted (--no-instructions)"
        return [f"Instructions per heartbeat: {reason}.", ""]
    w = costs["workload"]

    def per(name: str) -> str:
        found = costs.get(name) or {}
        value = found.get("instructions_per_heartbeat")
        return f"{value:,.0f}" if value else found.get("error", "–")

    return [
        "**Instructions per heartbeat** (noise-free: `valgrind --tool=callgrind`, the event "
        f"loop's thread; {w['cps']} CPs × {w['long']} heartbeats minus {w['cps']} CPs × "
        f"{w['short']}, every round ACKed, so start-up, login and shutdown cancel out; "
        "hardware counters are not available on this VM):",
        "",
        "| bare server | FramedConnection server | central | central ÷ bare | "
        "central ÷ FramedConnection |",
        "|---|---|---|---|---|",
        f"| {per('bare')} | {per('framed')} | {per('central')} | "
        f"{_f(costs.get('central_x_bare'), 2, '×')} | "
        f"{_f(costs.get('central_x_framed'), 2, '×')} |",
        "",
        "**CPU time per heartbeat** at each step (moved by the machine's other load): the "
        "median over four equal slices of the status-only window, (min–max) of the slices.",
        "",
    ]


def _broker_cost_lines(baseline: dict[str, Any]) -> list[str]:
    """The embedded broker's CPU per hop by the batches a partition holds, if measured."""
    found = baseline.get("broker_hop_cost")
    if not found:
        return []
    if "error" in found:
        return [f"Broker CPU per hop: not measured ({found['error']}).", ""]
    rows = [
        f"| {lv['batches_per_partition']:,} | {lv['broker_us_per_hop']:,.0f} | "
        f"{lv['wall_ms_per_hop']:.1f} |"
        for lv in found["levels"]
    ]
    return [
        "**What a hop costs the embedded broker, by what it holds** (`evbench.brokercost`, "
        "on a broker of its own before the steps): each of "
        f"{found['partitions']} partitions filled with one-record batches, then "
        f"{found['hops']} records sent one at a time, each read back before the next; the "
        "broker's CPU over them less its idle CPU over the same time. Tansu's in-memory "
        "engine keeps every record and lists every batch of a partition on each fetch that "
        "finds new data, so this grows with what the run wrote before; the bench starts "
        "each step on an empty broker (a Kafka broker's retention does the same).",
        "",
        "| batches held per partition | broker CPU µs per hop | wall ms per hop |",
        "|---|---|---|",
        *rows,
        "",
    ]


def _record_instruction_lines(costs: dict[str, Any]) -> list[str]:
    """The central's instructions per authorization and per telemetry record, if counted."""
    found = costs.get("central_records")
    if not found:
        return []
    if "error" in found:
        return [f"Instructions per authorization and per telemetry: {found['error']}.", ""]
    w = found["workload"]

    def per(kind: str) -> str:
        value = (found.get(kind) or {}).get("instructions_per_record")
        return f"{value:,.0f}" if value else "–"

    heartbeat = (costs.get("central") or {}).get("instructions_per_heartbeat")
    text = (
        "**The central's instructions per Kafka record** (the same callgrind method, main "
        f"thread; {w['cps']} CPs and drivers enrolled in every run): per *authorization*, "
        "a driver's proven request read and checked, the sealed answer and the proven START "
        f"published ({w['auths_long']} requests minus {w['auths_short']}, one at a time, each "
        "awaited); per *telemetry*, a CP's proven report read and checked and the sealed "
        f"update published to its driver ({w['sessions']} supplies × {w['telemetry_long']} "
        f"rounds minus × {w['telemetry_short']}, every round awaited)."
    )
    return [
        text,
        "",
        "| per heartbeat | per authorization | per telemetry |",
        "|---|---|---|",
        f"| {f'{heartbeat:,.0f}' if heartbeat else '–'} | {per('authorization')} | "
        f"{per('telemetry')} |",
        "",
    ]


def _detection_lines(rows: list[dict[str, Any]]) -> list[str]:
    if not any(r.get("killed_cp") for r in rows):
        return []
    out = [
        "",
        "## Heartbeat interval, memory per CP and a killed CP",
        "",
        "The central names the heartbeat interval at login (`--heartbeat-interval`: 1 s up to "
        "10,000 CPs, 5 s above); monitors report a change at once. At the end of each step two "
        "probe CPs are killed: one link reset (a killed pod: seen at once), one silent with "
        "its connection open (seen after missed × interval). Seconds from the kill to "
        "`event: cp` DISCONNECTED on `/api/events`.",
        "",
        "| CPs | interval s | central cores (status) | central KB per CP | reset → DISCONNECTED s "
        "| silent → DISCONNECTED s | bound (3 × interval) s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        k = r.get("killed_cp") or {}
        out.append(
            f"| {_cps(r)} | {_f(r['heartbeat_interval'], 0)} | "
            f"{_f(r['central_cores_heartbeat'], 2)} | {_f(r['central_kb_per_cp'])} | "
            f"{_f(k.get('dropped_s'), 2)} | {_f(k.get('silent_s'), 2)} | "
            f"{_f(k.get('bound_s'), 0)} |"
        )
    return out


def _proof_lines(rows: list[dict[str, Any]]) -> list[str]:
    if not any(r.get("proof_cost_us") for r in rows):
        return []
    out = [
        "",
        "## Cost of the proofs on Kafka records",
        "",
        "What one record's proof costs (`evproto.proofs.measure_cost` on a `Telemetry`, "
        "µs per operation, measured by the load generator in each step): an HMAC-SHA256 "
        "proof made and checked (every request, report and directive), and an AES-256-GCM "
        "box sealed and opened (everything meant for one driver).",
        "",
        "| CPs | prove µs | verify µs | seal µs | open µs |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        c = r.get("proof_cost_us") or {}
        out.append(
            f"| {_cps(r)} | {_f(c.get('prove_us'))} | {_f(c.get('verify_us'))} | "
            f"{_f(c.get('seal_us'))} | {_f(c.get('open_us'))} |"
        )
    return out


def _dirty(paths: Any) -> str:
    if not paths:
        return ""
    if not isinstance(paths, list):
        return " (with uncommitted changes)"
    return f" plus uncommitted changes in {', '.join(f'`{p}`' for p in paths)}"


def render_markdown(summary: dict[str, Any], findings: str = "") -> str:
    """The page; ``findings`` (markdown written by hand about this run) goes after the targets."""
    m = summary["machine"]
    rows = summary["steps"]
    g = summary["growth_per_1000_cps"]
    base = summary["baseline"]
    opts = summary["options"]
    step_list = ", ".join(_cps(r) for r in rows)
    out = [
        "# Benchmarks",
        "",
        f"Generated by `make bench` on {summary['generated_at']} in "
        f"{summary['duration_s'] / 60:.1f} min · commit `{m['commit']}`"
        f"{_dirty(m['dirty'])} · {m['cpu']}, "
        f"{m['cores']} cores, {m['memory_gb']} GB, Linux {m['kernel']}, Python {m['python']}.",
        f"{_pinning_line(summary.get('pinning') or {})} "
        "Raw figures: [`benchmarks.json`](benchmarks.json).",
        "",
        "## Targets",
        "",
        *_verdict_rows(summary["verdicts"]),
        "",
        *([findings.strip(), ""] if findings.strip() else []),
        "## Per step",
        "",
        "Latencies are p50 / p99 in milliseconds. CPU in cores (1.0 = one core busy), "
        "read from `/proc/<pid>/stat`; memory is VmRSS. *Machine busy* is every CPU of the "
        "host during the session window (`/proc/stat`); *other processes* is what neither "
        "the central, the broker nor the generator used (other work on the machine).",
        "",
        "| CPs | held | dashboard flip | authorization | req/s | telemetry e2e | sessions "
        "(mean / max) | central cores (status / +sessions) | central RSS MB | broker cores | "
        "generator cores | machine busy / other processes |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {_cps(r)} | {_f(r['held'])} | {_pair(r['dashboard'])} | "
            f"{_pair(r['authorization'])} | {_f(r['request_rate'])} | {_pair(r['telemetry'])} | "
            f"{_f(r['concurrent_mean'], 0)} / {_f(r['concurrent_max'])} | "
            f"{_f(r['central_cores_heartbeat'], 2)} / {_f(r['central_cores_sessions'], 2)} | "
            f"{_f(r['central_rss_mb'], 0)} | {_f(r['broker_cores_sessions'], 2)} | "
            f"{_f(r['loadgen_cores_heartbeat'], 2)} / {_f(r['loadgen_cores_sessions'], 2)} | "
            f"{_f(r['machine_cores_sessions'], 2)} / {_f(r['other_cores_sessions'], 2)} |"
        )
    for failure in summary.get("failed_steps", []):
        out.append(f"\n**The {failure['cps']:,}-CP step failed**: {failure['error']}")
    out += [
        "",
        f"Central at rest before the first step: {_f(base.get('central_idle_cores'), 3)} cores, "
        f"{_f(base.get('central_idle_rss_mb'), 0)} MB. "
        f"Growth per 1,000 more CPs: {_f(g['central_rss_mb'], 1)} MB resident, "
        f"{_f(g['central_cores'], 3)} cores (least-squares over the steps).",
        "",
        "### Where the Kafka latencies go",
        "",
        "Each latency split at the instant the central stamped on what it published "
        "(`sent_at` of its `SupplyResponse` / `DriverUpdate`): *until* covers the producer, "
        "the broker and the central's consumer and handling; *after* covers the central's "
        "producer, the broker and the driver's read. p50 / p99 ms. *One broker hop* is "
        "the same kind of trip with no central on it: the generator sends 20 small records "
        "a second to a topic no service reads (`evbench.echo`) with the drivers' producer "
        "settings and reads them back like a driver, during the session window. "
        "*Central loop lag* is "
        "how late the central's event loop ran a 250 ms timer during the session window "
        "(its `evcharging_central_event_loop_lag_seconds` histogram, scraped at the window's "
        "start and end; bucket upper bounds, p50 / p99 / max ms): what any message waited "
        "for the central's loop on top of its own handling.",
        "",
        "| CPs | authorization until | authorization after | telemetry until | telemetry after "
        "| one broker hop (no central) | central loop lag |",
        "|---|---|---|---|---|---|---|",
        *(_split_row(r) for r in rows),
        "",
        *_broker_cost_lines(summary.get("baseline") or {}),
        *_record_instruction_lines(summary.get("costs") or {}),
        "## Cost of a heartbeat: central vs the bare frame server",
        "",
        *_instruction_lines(summary.get("costs") or {}),
        "The bare server (`evbench.bare`) only decodes frames, checks the LRC, parses the "
        "JSON and ACKs. The FramedConnection server is the same with evproto's link code "
        "(`FramedConnection.serve`, schema validation, delivery to a callback) and nothing "
        "else. The same "
        "monitor fleet ran against both just before the central, status reports only. The "
        "costs compare at the same load only where the central ACKed every heartbeat "
        "(heartbeats/s ≈ CPs); a saturated step's figure is the cost at the rate it managed.",
        "",
        "| CPs | heartbeats/s | bare µs/heartbeat | FramedConnection server µs/heartbeat | "
        "central µs/heartbeat | ratio to bare | CPs at 1 Hz per core (central / bare) | "
        "central KB per CP | ACK round trip p50 / p99 | late heartbeats |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {_cps(r)} | {_f(r['heartbeats_per_s'], 0)} | "
            f"{_us(r['bare_us_per_heartbeat'], r.get('bare_us_spread'))} | "
            f"{_us(r['framed_us_per_heartbeat'], r.get('framed_us_spread'))} | "
            f"{_us(r['central_us_per_heartbeat'], r.get('central_us_spread'))} | "
            f"{_f(r['heartbeat_cost_ratio'], 2, '×')} | "
            f"{_per_core(r['central_us_per_heartbeat'])} / "
            f"{_per_core(r['bare_us_per_heartbeat'])} | "
            f"{_f(r['central_kb_per_cp'])} | "
            f"{_pair(r['heartbeat_ack'] or {})} | {_f(r['heartbeats_late'])} |"
        )
    out += _detection_lines(rows)
    out += _proof_lines(rows)
    out += [
        "",
        "## Messages a driver reads per message meant for it",
        "",
        "Ours: a driver assigns only its key's partition of `ev.supply.responses` and "
        "`ev.driver.updates`. Seed: it reads both topics whole and filters. *Fleet*: every "
        "record the driver fleet read, tallied by partition: what all drivers that got "
        "anything would read, over all the messages meant for them. *Measured*: two real "
        "consumers, one per design, for the same driver in the same run, at steps up to "
        f"{SAMPLE_READERS_UP_TO:,} CPs (the whole-topic consumer doubles the broker's fetch "
        "work on both topics, so larger steps leave it out).",
        "",
        "| CPs | drivers | fleet: ours | fleet: seed | measured: ours | measured: seed |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        f, s = r["reads_per_meant"], r["sample_reads_per_meant"]
        out.append(
            f"| {_cps(r)} | {_f(f.get('drivers'))} | {_f(f.get('ours'))} | "
            f"{_f(f.get('seed'))} | {_f(s.get('ours'))} | {_f(s.get('seed'))} |"
        )
    out += [
        "",
        "## Correctness",
        "",
        "Every authorized session must end with exactly one ticket at its driver, and the "
        "driver must see telemetry 1 … last seq of that ticket with no gap and no repeat. "
        "At the end of a step the drain waits while answers and tickets keep arriving "
        "(up to 15 s without progress, 60 s in all); what is still open then counts as "
        "lost here, though it may only be late.",
        "",
        "| CPs | requests | tickets | lost or duplicated | other non-zero counts |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        others = {k: v for k, v in r["errors"].items() if k not in _LOST_OR_DUPLICATED}
        text = ", ".join(f"{k} {v}" for k, v in others.items()) or "none"
        out.append(
            f"| {_cps(r)} | {_f(r['requests'])} | {_f(r['tickets'])} | "
            f"{r['lost_or_duplicated']} | {text} |"
        )
    profile = _profile_lines(summary.get("profile") or {})
    if profile:
        out += ["", f"## Where the central spends its CPU at {rows[-1]['cps']:,} CPs", *profile]
    out += _ocpp_lines(summary.get("ocpp"))
    out += [
        "",
        "## Method",
        "",
        f"- Steps: {step_list} CPs. Each step is one "
        "`python -m evbench.loadgen` process: the CPs connect and authenticate (registering "
        "with the registration token the first time), report `Status` every heartbeat "
        "interval the central names (1 s; 5 s above 10,000 CPs), spread evenly over it; "
        f"then a {opts['heartbeat_window']:.0f} s window of status "
        f"reports only; then supplies at one CP in ten, each {opts['session_s']:.0f} s long, "
        f"a session length to ramp up and a {opts['session_window']:.0f} s window; then a "
        "drain (every supply unplugged, every ticket awaited) and the checks.",
        "- Dashboard flip: sample CPs report KO then OK through their real link; the latency "
        "runs from the status frame written to the `event: cp` with the new state on "
        "`/api/events` (the central coalesces these every 250 ms).",
        "- Authorization: `SupplyRequest` published → `SupplyResponse` read from the driver's "
        "partition. Telemetry: engine fleet publishes `Telemetry` → the driver reads the "
        "relayed `DriverUpdate` with that seq.",
        "- The simulated monitor link is an `asyncio.Protocol` writing the same bytes as "
        "`FramedConnection` (same encoder, one frame in flight, ACK/NACK, EOT): "
        "`FramedConnection.send` costs ~70 µs of generator CPU per frame, too much to "
        "simulate 10,000 CPs on the machine under test.",
        "- CPU per heartbeat = process CPU over the status-only window ÷ heartbeats ACKed "
        "in it; the central's figure includes its idle cost (Kafka client threads).",
    ]
    return "\n".join(out) + "\n"


# --- the OCPP gateway's step (evbench.ocppstep) ----------------------------------------


def _ocpp_lost(step: dict[str, Any]) -> int:
    """Calls and supplies lost or refused at a step: any makes it not held."""
    w, rs = step["window"], step["remote_start"]
    return int(
        w["timeouts"] + w["call_errors"] + w["closed"] + rs["unanswered"]
        + rs["missing_tickets"] + rs["duplicate_tickets"] + sum(rs["denied"].values())
        + sum(rs["driver_errors"].values())
    )  # fmt: skip


def _ocpp_row(step: dict[str, Any]) -> dict[str, Any]:
    w, rs = step["window"], step["remote_start"]
    stations, cores = step["stations"], step.get("gateway_cores")
    lost = _ocpp_lost(step)
    connected = step["connected"] == stations and step["active_at_central"] >= stations
    return {
        "stations": stations,
        "connected": step["connected"],
        "active_at_central": step["active_at_central"],
        "ramp_s": step.get("ramp_s"),
        "calls_per_s": w["calls_per_s"],
        "call_rtt": w["call_rtt"],
        "late": w["late"],
        "missed_ticks": w["missed_ticks"],
        "lost": lost,
        "gateway_cores": cores,
        "stations_per_core": stations / cores if cores else None,
        "gateway_rss_mb": step.get("gateway_rss_mb"),
        "central_cores": step.get("central_cores"),
        "broker_cores": step.get("broker_cores"),
        "loadgen_cores": w.get("loadgen_cores"),
        "machine_cores": step.get("machine_cores"),
        "starts": rs["to_station"]["count"],
        "tickets": rs["tickets"],
        "to_station": rs["to_station"],
        "to_driver": rs["to_driver"],
        # held: every station connected and ACTIVE, every call answered within the
        # second before its next, nothing lost
        "held": connected and lost == 0 and w["late"] == 0 and w["missed_ticks"] == 0,
    }


def summarize_ocpp(raw: dict[str, Any] | None) -> dict[str, Any] | None:
    """The OCPP step's rows, and stations per core at the largest step the gateway held."""
    if not raw:
        return None
    if "error" in raw:
        return {"error": raw["error"], "steps": []}
    rows = [_ocpp_row(s) for s in raw["steps"]]
    held = [r for r in rows if r["held"]]
    best = max(held, key=lambda r: r["stations"]) if held else None
    return {
        "steps": rows,
        "held_up_to": best["stations"] if best else None,
        "stations_per_core": best["stations_per_core"] if best else None,
        "remote_start": raw.get("remote_start", {}),
        "call_rtt": raw.get("call_rtt", {}),
        "late_s": raw.get("plan", {}).get("late_s"),
        "plan": raw.get("plan", {}),
    }


def _three(summary: dict[str, Any]) -> str:
    if not summary or not summary.get("count"):
        return "–"
    return " / ".join(_f(summary.get(k), 0) for k in ("p50_ms", "p95_ms", "p99_ms"))


def _ocpp_lines(ocpp: dict[str, Any] | None) -> list[str]:
    if not ocpp:
        return []
    out = ["", "## OCPP gateway", ""]
    if ocpp.get("error"):
        return [*out, f"**The OCPP step failed**: {ocpp['error']}"]
    plan, rows = ocpp.get("plan", {}), ocpp["steps"]
    per_core = ocpp.get("stations_per_core")
    rs = ocpp.get("remote_start", {})
    headline = (
        f"One `evocpp` held {ocpp['held_up_to']:,} OCPP 1.6J stations at one call a second "
        f"each: **{round(per_core, -1):,.0f} stations per core** (stations ÷ the gateway's "
        "CPU at the largest step it held)."
        if per_core
        else "The gateway held none of the steps (see *held* below)."
    )
    out += [
        headline,
        f"A remote start took {_three(rs.get('to_station', {}))} ms (p50 / p95 / p99) from the "
        f"driver's request to `RemoteStartTransaction` at the station, and "
        f"{_three(rs.get('to_driver', {}))} ms until the driver saw the supply start, over "
        f"{_f(rs.get('to_station', {}).get('count'))} starts in all steps.",
        "",
        "Simulated OCPP-J 1.6 stations (`evbench.ocppstation`: raw JSON frames on aiohttp's "
        "WebSocket client) connect to a real `evocpp` started as `make run` starts it "
        "(enrollment auto; each connector registers at the central), which asks for a "
        "heartbeat every second. Each station makes one call a second, alternately "
        "`Heartbeat` and `MeterValues` (the energy register, Wh, no transaction); a station "
        "that charges sends its transaction's `MeterValues` every second. The stations of a "
        "step stay for the next; each step's window starts once every station's CP is ACTIVE "
        f"at the central, and lasts {_f(plan.get('window'), 0)} s, during which "
        f"{_f(plan.get('drivers'))} enrolled drivers request supplies at "
        f"{_f(plan.get('start_rate'), 0)} a second at the first stations' CPs: the gateway "
        "sends `RemoteStartTransaction`, the station accepts and sends `StartTransaction` "
        "(`SupplyStarted` for the central), charges "
        f"{_f(plan.get('charge_s'), 0)} s and ends with `StopTransaction`; the driver gets "
        "the ticket. The gateway runs alone on the servers' core; the central, the broker "
        "and the generator share the other. *Held*: every station connected and its CP "
        f"ACTIVE, every call answered within {_f(ocpp.get('late_s'), 0)} s (before the next "
        "is due), no call or supply lost. *Machine busy*: every CPU of the host in the "
        "window (2.00 = both cores of a 2-core machine).",
        "",
        "| stations | calls/s | call round trip p50 / p99 / max ms | gateway cores | "
        "stations per core | gateway RSS MB | central cores | broker cores | generator cores "
        "| machine busy | late / lost | held |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rtt = r["call_rtt"]
        out.append(
            f"| {r['stations']:,} | {_f(r['calls_per_s'], 0)} | {_f(rtt.get('p50_ms'))} / "
            f"{_f(rtt.get('p99_ms'))} / {_f(rtt.get('max_ms'), 0)} | "
            f"{_f(r['gateway_cores'], 2)} | {_f(r['stations_per_core'], 0)} | "
            f"{_f(r['gateway_rss_mb'], 0)} | {_f(r['central_cores'], 2)} | "
            f"{_f(r['broker_cores'], 2)} | {_f(r['loadgen_cores'], 2)} | "
            f"{_f(r['machine_cores'], 2)} | {r['late'] + r['missed_ticks']} / {r['lost']} | "
            f"{'yes' if r['held'] else '**no**'} |"
        )
    out += [
        "",
        "Remote starts at each step, p50 / p95 / p99 ms from the driver's request:",
        "",
        "| stations | starts | → `RemoteStartTransaction` at the station | → the driver "
        "sees SUPPLYING | tickets |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['stations']:,} | {_f(r['starts'])} | {_three(r['to_station'])} | "
            f"{_three(r['to_driver'])} | {_f(r['tickets'])} |"
        )
    return out
