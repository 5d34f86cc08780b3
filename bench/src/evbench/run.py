"""``make bench``: the embedded broker, the real central, the bare server and the load steps.

The central is started exactly as :meth:`evstack.localstack.LocalStack.start_central`
starts it (the command line of ``make run`` and the Helm chart). For each step
the same monitor-fleet load runs first against the bare frame server, then
against the same server speaking through ``FramedConnection``, then against
the central with sessions; every load is its own ``evbench.loadgen`` process,
and a sampler reads the CPU and memory of the central, the reference servers,
the broker and the generator from ``/proc`` meanwhile.

Before the steps the three servers' instructions per heartbeat are counted under
callgrind (:mod:`evbench.costs`). With two or more cores the central and the
reference servers run on the last core and everything else (broker, generator,
this process) on the others (:mod:`evbench.pinning`). A step above 10,000 CPs
restarts the central with the heartbeat interval of a large fleet (5 s).

After the CP steps, the OCPP step (:mod:`evbench.ocppstep`): a real ``evocpp``
gateway on the servers' core by itself and an ``evbench.ocppload`` process of
simulated OCPP stations and drivers (``--only ocpp`` runs it alone).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evproto.errors import EvError
from evstack.broker import free_port
from evstack.localstack import LocalStack, ManagedProcess, console_script

from evbench.brokercost import measure_hop_cost
from evbench.costs import measure_costs
from evbench.instructions import Workload, callgrind_available
from evbench.limits import fds_short_of, raise_fd_limit
from evbench.looplag import Buckets, lag_between, scrape_lag_buckets
from evbench.ocppstep import GATEWAY_ARGS, loadgen_argv, loadgen_budget, window_figures
from evbench.pinning import Pinning
from evbench.plan import SAMPLE_READERS_UP_TO, BenchOptions, Step, steps_for
from evbench.procstat import MACHINE, ProcessSampler
from evbench.profile import PySpy
from evbench.session_costs import SessionWorkload
from evbench.stats import spread

__all__ = ["BenchError", "central_missing", "run_benchmark", "wait_ready"]

_LOADGEN_GRACE = 180.0  # seconds a load step may take beyond its windows
_BETWEEN_STEPS = 4.0  # the central notices the last step's links closing
_SLICES = 4  # a window's CPU per heartbeat is also read over this many slices


def central_missing() -> str | None:
    """Why the real central cannot run here, or None when ``evcentral --help`` works."""
    binary = console_script("evcentral")
    try:
        done = subprocess.run([binary, "--help"], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"evcentral is not installed ({exc}); run make install"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        return f"evcentral --help failed ({' '.join(tail) or done.returncode})"
    return None


class BenchError(EvError):
    code = "bench"
    default_message = "the benchmark could not run"


def _say(message: str) -> None:
    print(f"evbench: {message}", file=sys.stderr, flush=True)


def wait_ready(stack: LocalStack, central: ManagedProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"{stack.http_url}/readyz"
    while time.monotonic() < deadline:
        if not central.alive:
            raise BenchError(f"evcentral exited; see {central.log_path}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise BenchError(f"evcentral was not ready within {timeout}s; see {central.log_path}")


class _Loadgen:
    """One ``python -m evbench.loadgen`` run; reacts to its window announcements."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        out: Path,
        log: Path,
        prefix: list[str] | None = None,
        *,
        module: str = "evbench.loadgen",
    ) -> None:
        self.name = name
        self.out = out
        loadgen = [sys.executable, "-m", module, *argv, "--out", str(out)]
        self.argv = [*(prefix or []), *loadgen]  # taskset execs: the pid stays the loadgen's
        self.log = log
        self.on_line: Callable[[str], None] = lambda _line: None

    def run(self, sampler: ProcessSampler, timeout: float) -> dict[str, Any]:
        with open(self.log, "w") as log:
            proc = subprocess.Popen(
                self.argv, stdout=log, stderr=subprocess.PIPE, text=True, bufsize=1
            )
            sampler.watch(self.name, proc.pid)
            reader = threading.Thread(target=self._follow, args=(proc, log), daemon=True)
            reader.start()
            try:
                code = proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise BenchError(f"{self.name} took more than {timeout:.0f}s") from None
            finally:
                reader.join(5)
                sampler.forget(self.name)
        if code != 0:
            raise BenchError(f"{self.name} exited with code {code}; see {self.log}")
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result

    def _follow(self, proc: subprocess.Popen[str], log: Any) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.write(line)
            if line.startswith("loadgen: "):
                text = line[len("loadgen: ") :].strip()
                _say(f"{self.name}: {text}")
                self.on_line(text)


def _window_figures(
    sampler: ProcessSampler, name: str, window: dict[str, Any] | None
) -> dict[str, Any]:
    if not window:
        return {}
    start, end = window["start"], window["end"]
    cores = sampler.cores(name, start, end)
    acked = window["heartbeats_acked"]
    per_heartbeat = cores * window["seconds"] / acked * 1e6 if cores is not None and acked else None
    rss = sampler.last_rss(name, end)
    # the same figure over each of a few equal slices of the window (the rate is steady):
    # its median and spread say how much the machine's other load moved it
    slices = []
    if acked and window["seconds"]:
        rate = acked / window["seconds"]
        step = (end - start) / _SLICES
        for i in range(_SLICES):
            used = sampler.cores(name, start + i * step, start + (i + 1) * step)
            if used is not None:
                slices.append(used / rate * 1e6)
    return {
        "cores": cores,
        "us_per_heartbeat": per_heartbeat,
        "us_per_heartbeat_slices": spread(slices),
        "heartbeats_per_s": acked / window["seconds"] if window["seconds"] else None,
        "rss_mb": rss / 2**20 if rss is not None else None,
    }


class _Bench:
    def __init__(self, options: BenchOptions, workdir: Path) -> None:
        self.options = options
        self.workdir = workdir
        self.stack = LocalStack(workdir)
        self.sampler = ProcessSampler()
        self.references: dict[str, ManagedProcess] = {}  # bare and framed frame servers
        self.addresses: dict[str, str] = {}
        self.pinning = Pinning.for_this_machine() if options.pin else Pinning.none()
        self.interval = 0.0  # the heartbeat interval the running central names

    def start(self, first_interval: float) -> dict[str, Any]:
        _say(f"starting the embedded broker in {self.workdir}")
        self.pinning.pin_self()
        self._start_broker()
        costs = self._count_instructions()
        hop_cost = self._broker_hop_cost()
        self._start_central(first_interval)
        # silence closes a framed link as the central's idle timeout does (3 × interval)
        plan = steps_for(self.options.steps, self.options.session_s)
        silence = 3 * max((step.interval for step in plan), default=1.0)
        framed = ["--framed", "--idle-timeout", f"{silence:g}"]
        for name, extra in (("bare", []), ("framed", framed)):
            address = f"127.0.0.1:{free_port()}"
            proc = ManagedProcess(
                name,
                [sys.executable, "-m", "evbench.bare", "--listen", address, *extra],
                {},
                self.workdir / f"{name}.log",
            ).start()
            self.references[name], self.addresses[name] = proc, address
            self.sampler.watch(name, proc.pid)
            self.pinning.pin(name, proc.pid)
        self.sampler.start()
        time.sleep(1.0)
        start = time.time()
        time.sleep(self.options.idle_window)
        idle = self.sampler.cores("central", start, time.time())
        return {
            "central_idle_cores": idle,
            "central_idle_rss_mb": (self.sampler.last_rss("central", time.time()) or 0) / 2**20,
            "costs": costs,
            "broker_hop_cost": hop_cost,
        }

    def _start_broker(self) -> None:
        broker = self.stack.start_broker()
        if broker.pid is not None:
            self.sampler.watch("broker", broker.pid)
            self.pinning.pin("broker", broker.pid)

    def fresh_broker(self, interval: float) -> None:
        """A new, empty broker and the central restarted on it (its database stays).

        The embedded broker keeps every record in memory, and each fetch of a
        partition lists every batch it holds, so its cost grows with what the
        earlier steps wrote; a Kafka broker deletes old segments (retention).
        """
        _say("restarting the embedded broker empty, and the central on it")
        if self.stack.central is not None and self.stack.central.alive:
            self.sampler.forget("central")
            self.stack.central.stop()
        self.sampler.forget("broker")
        if self.stack.broker is not None:
            self.stack.broker.stop()
        self._start_broker()
        self._start_central(interval)

    def _broker_hop_cost(self) -> dict[str, Any] | None:
        """The embedded broker's CPU per hop by batches held (:mod:`evbench.brokercost`)."""
        if not self.options.instructions:
            return None
        _say("timing the embedded broker's CPU per hop by the batches a partition holds")
        try:
            found = measure_hop_cost(
                self.workdir / "hopcost", pin=lambda pid: self.pinning.pin("broker", pid)
            )
        except (EvError, OSError, TimeoutError) as exc:
            _say(f"broker cost per hop not measured: {exc}")
            return {"error": str(exc)}
        levels = ", ".join(
            f"{lv['batches_per_partition']:,} held: {lv['broker_us_per_hop']:,.0f} µs"
            for lv in found["levels"]
        )
        _say(f"broker CPU per hop: {levels}")
        return found

    def _count_instructions(self) -> dict[str, Any] | None:
        if not self.options.instructions:
            return None
        missing = callgrind_available()
        if missing is not None:
            _say(f"instructions per heartbeat not counted: {missing}")
            return {"error": missing}
        _say(
            "counting instructions under callgrind: per heartbeat (bare, framed, central), "
            "per authorization and per telemetry record (central)"
        )
        workload = Workload(cps=self.options.instruction_cps)
        costs = measure_costs(
            self.stack.bootstrap,
            self.workdir / "callgrind",
            workload,
            self.pinning.prefix("central"),
            sessions=SessionWorkload(),
        )
        _say(f"instructions per heartbeat: {_instruction_summary(costs)}")
        _say(f"central instructions per record: {_record_summary(costs)}")
        return costs

    def _start_central(self, interval: float) -> None:
        """(Re)start the central naming ``interval`` to its monitors; the database stays."""
        if self.stack.central is not None and self.stack.central.alive:
            self.sampler.forget("central")
            self.stack.central.stop()
        _say(f"starting evcentral (heartbeat interval {interval:g} s)")
        # 10,000 simulated CPs register from 8 loopback addresses in the first step
        central = self.stack.start_central(
            "--registration-burst", "60000", "--heartbeat-interval", f"{interval:g}"
        )
        self.pinning.pin("central", central.pid)
        wait_ready(self.stack, central)
        self.pinning.pin("central", central.pid)  # threads started meanwhile
        self.sampler.watch("central", central.pid)
        self.interval = interval

    def run_ocpp(self, fresh: bool = False) -> dict[str, Any]:
        """The OCPP step (:mod:`evbench.ocppstep`): the gateway alone on the servers' core;
        ``fresh``: on a new, empty broker (:meth:`fresh_broker`)."""
        s = self.stack
        if fresh:
            self.fresh_broker(1.0)
        elif self.interval != 1.0:
            self._start_central(1.0)
        central = s.central
        assert central is not None
        _say(f"OCPP step: starting evocpp; stations {self.options.ocpp_steps}")
        gateway = s.start_gateway(*GATEWAY_ARGS)
        self.pinning.pin("gateway", gateway.pid)
        self.pinning.pin("central (OCPP step)", central.pid)  # off the gateway's core
        try:
            _wait_listening(s.host, s.ocpp_port, gateway)
            self.pinning.pin("gateway", gateway.pid)  # threads started meanwhile
            self.sampler.watch("gateway", gateway.pid)
            load = _Loadgen(
                "ocpp",
                loadgen_argv(s, self.options, self.workdir, f"bench-ocpp-{int(time.time())}"),
                self.workdir / "ocpp.json",
                self.workdir / "loadgen-ocpp.log",
                self.pinning.prefix("loadgen"),
                module="evbench.ocppload",
            )
            result = load.run(self.sampler, loadgen_budget(self.options))
        finally:
            self.sampler.forget("gateway")
            gateway.stop()
            self.pinning.pin("central", central.pid)
        steps = [
            {**step, **window_figures(self.sampler, step["window"])} for step in result["steps"]
        ]
        return {**result, "steps": steps, "load_average": os.getloadavg()}

    def stop(self) -> None:
        self.sampler.stop()
        for proc in self.references.values():
            proc.stop()
        self.stack.stop()

    def run_step(self, step: Step, last: bool, fresh: bool = False) -> dict[str, Any]:
        """One load step; ``fresh``: on a new, empty broker (:meth:`fresh_broker`)."""
        o = self.options
        tag = step.label
        interval = step.interval
        if fresh:
            self.fresh_broker(interval)
        elif interval != self.interval:
            self._start_central(interval)
        common = ["--cps", str(step.cps), "--sources", "8", "--log-level", "WARNING",
                  "--interval", f"{interval:g}"]  # fmt: skip
        generator = self.pinning.prefix("loadgen")
        references: dict[str, dict[str, Any]] = {"bare": {}, "framed": {}}
        for name in ("bare", "framed") if o.references else ():
            load = _Loadgen(
                f"{name}-{tag}",
                [*common, "--central", self.addresses[name], "--probes", "0",
                 "--heartbeat-window", str(o.bare_window), "--settle", "2"],
                self.workdir / f"{name}-{tag}.json",
                self.workdir / f"loadgen-{name}-{tag}.log",
                generator,
            )  # fmt: skip
            result = load.run(self.sampler, o.bare_window + _LOADGEN_GRACE)
            references[name] = {
                "loadgen": result,
                **_window_figures(self.sampler, name, result["windows"]["heartbeat"]),
            }
            time.sleep(1.0)
        s = self.stack
        central = _Loadgen(
            f"central-{tag}",
            [*common, "--central", s.central_address, "--http", s.http_url,
             "--kafka", s.bootstrap,
             "--registration-token-file", str(self.workdir / "registration-token"),
             "--viewer-token-file", str(self.workdir / "viewer-token"),
             "--enrollment-token-file", str(self.workdir / "enrollment-token"),
             "--secrets", str(self.workdir / "cp-secrets.json"),
             "--drivers", str(step.drivers), "--rate", f"{step.rate:.3f}",
             "--session-s", str(step.session_s), "--heartbeat-window", str(o.heartbeat_window),
             "--duration", str(o.session_window), "--probes", str(o.probes),
             "--detect-killed",
             *([] if step.cps <= SAMPLE_READERS_UP_TO else ["--no-sample-readers"]),
             "--run-id", f"bench-{tag}-{int(time.time())}"],
            self.workdir / f"central-{tag}.json",
            self.workdir / f"loadgen-central-{tag}.log",
            generator,
        )  # fmt: skip
        profiles: dict[str, dict[str, Any] | None] = {}
        spies: dict[str, PySpy] = {}
        lag_scrapes: dict[str, Buckets | None] = {}
        profiling = last and o.profile and s.central is not None
        central_pid = s.central.pid if s.central is not None else 0

        def on_line(text: str) -> None:
            for window, seconds in (
                ("heartbeat", o.heartbeat_window),
                ("sessions", o.session_window),
            ):
                if text in (f"window {window} start", f"window {window} end"):
                    lag_scrapes[text] = scrape_lag_buckets(s.http_url)
                if profiling and text == f"window {window} start":
                    spy = PySpy(central_pid, seconds, self.workdir / f"py-spy-{window}.txt")
                    if spy.start():
                        spies[window] = spy

        central.on_line = on_line
        budget = (
            o.heartbeat_window
            + o.session_window
            + 2 * step.session_s
            + _LOADGEN_GRACE
            + 3 * interval  # the silent CP's detection
        )
        result = central.run(self.sampler, budget)
        for window, spy in spies.items():
            profiles[window] = spy.finish()
        windows = result.get("windows", {})
        heartbeat = _window_figures(self.sampler, "central", windows.get("heartbeat"))
        sessions = _window_figures(self.sampler, "central", windows.get("sessions"))
        broker = _window_figures(self.sampler, "broker", windows.get("sessions"))
        machine = {
            name: _window_figures(self.sampler, MACHINE, windows.get(name)).get("cores")
            for name in ("heartbeat", "sessions")
        }
        start = windows.get("heartbeat", {}).get("start", 0.0)
        end = windows.get("sessions", windows.get("heartbeat", {})).get("end", time.time())
        peak = self.sampler.peak_rss("central", start, end)
        time.sleep(_BETWEEN_STEPS)
        return {
            "step": step.to_dict(),
            "heartbeat_interval": interval,
            **references,
            "central": {
                "loadgen": result,
                "heartbeat_window": heartbeat,
                "sessions_window": sessions,
                "peak_rss_mb": peak / 2**20 if peak else None,
                "loop_lag": {
                    window: lag_between(
                        lag_scrapes.get(f"window {window} start"),
                        lag_scrapes.get(f"window {window} end"),
                    )
                    for window in ("heartbeat", "sessions")
                },
            },
            "broker": broker,
            "machine_cores": machine,
            "load_average": os.getloadavg(),
            "profile": profiles,
        }


def run_benchmark(options: BenchOptions, workdir: Path) -> dict[str, Any]:
    """Run every step; returns the raw results the report is written from."""
    if (
        shutil.which("evcentral") is None
        and not (Path(sys.executable).parent / "evcentral").exists()
    ):
        raise BenchError("evcentral is not installed (make install)")
    fd_limit = raise_fd_limit()
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    bench = _Bench(options, workdir)
    started = time.time()
    steps: list[dict[str, Any]] = []
    plan = steps_for(options.steps, options.session_s)
    ocpp: dict[str, Any] | None = None
    try:
        baseline = bench.start(plan[0].interval if plan else 1.0)
        # the last step that can run is profiled (a larger one may not fit the fd limit)
        last = max((i for i, s in enumerate(plan) if not fds_short_of(s.cps, fd_limit)), default=0)
        for i, step in enumerate(plan):
            _say(f"step {i + 1}/{len(plan)}: {step.cps} CPs, {step.sessions} sessions")
            too_many = fds_short_of(step.cps, fd_limit)
            if too_many:  # the central holds one socket per CP: it cannot be held here
                _say(f"step {step.label} not run: {too_many}")
                steps.append({"step": step.to_dict(), "error": too_many})
                break
            try:
                steps.append(bench.run_step(step, last=i == last, fresh=i > 0))
            except BenchError as exc:  # report what ran; a larger step would fail too
                _say(f"step {step.cps} failed: {exc.message}")
                steps.append({"step": step.to_dict(), "error": exc.message})
                break
        if options.ocpp_steps:
            try:
                ocpp = bench.run_ocpp(fresh=bool(plan))
            except BenchError as exc:
                _say(f"OCPP step failed: {exc.message}")
                ocpp = {"error": exc.message}
    finally:
        bench.stop()
    return {
        "started_at": started,
        "seconds": time.time() - started,
        "fd_limit": fd_limit,
        "options": {k: getattr(options, k) for k in options.__dataclass_fields__},
        "baseline": baseline,
        "pinning": bench.pinning.report(),
        "steps": steps,
        "ocpp": ocpp,
    }


def _wait_listening(host: str, port: int, proc: ManagedProcess, timeout: float = 60.0) -> None:
    """Until ``proc`` accepts TCP connections on ``port`` (the gateway listens once ready)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive:
            raise BenchError(f"{proc.name} exited; see {proc.log_path}")
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise BenchError(f"{proc.name} did not listen within {timeout:g}s; see {proc.log_path}")


def _instruction_summary(costs: dict[str, Any]) -> str:
    parts = []
    for name in ("bare", "framed", "central"):
        per = (costs.get(name) or {}).get("instructions_per_heartbeat")
        parts.append(f"{name} {per:,.0f}" if per else f"{name} –")
    return ", ".join(parts)


def _record_summary(costs: dict[str, Any]) -> str:
    found = costs.get("central_records") or {}
    if "error" in found:
        return str(found["error"])
    parts = []
    for kind in ("authorization", "telemetry"):
        per = (found.get(kind) or {}).get("instructions_per_record")
        parts.append(f"{kind} {per:,.0f}" if per else f"{kind} –")
    return ", ".join(parts)
