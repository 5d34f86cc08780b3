"""The whole system as real processes for one test: broker, central, charging
points (engine + monitor), drivers, and the levers a scenario pulls.

Built on :class:`evstack.localstack.LocalStack`, so every process runs with the
command line of ``make run`` and the Helm chart; the flags added here are the
chart's ``extraArgs``-style knobs that make the scenarios quick (plug delay,
reconnect back-off). Each test gets its own broker (it starts in a tenth of a
second): the central's consumer group and committed offsets, and the topics
the conservation audit reads, must not carry over from another test.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e_conservation import Audit, audit
from e2e_driver import DriverRun
from e2e_http import CentralApi
from e2e_proxy import LinkCutter
from evproto.errors import ProofError
from evproto.messages import Sealed
from evproto.proofs import driver_root_key, open_sealed
from evproto.schema import Message
from evproto.secret_file import SecretFile
from evproto.topics import Topic
from evstack.kafka_probe import read_topics
from evstack.localstack import ChargingPoint, LocalStack, ManagedProcess
from evstack.waiting import wait_until

__all__ = ["CtlAnswer", "System"]

# Quick scenarios: the vehicle plugs half a second after the start directive, and a
# monitor retries the central at most every 2 s (chart: chargingPoints.*.extraArgs).
ENGINE_ARGS = ("--plug-delay", "0.5")
MONITOR_ARGS = ("--retry-cap", "2")
AUDITED_TOPICS = (Topic.SUPPLY_RESPONSES, Topic.TELEMETRY, Topic.DRIVER_UPDATES)
_STOP_GRACE_S = 12.0  # a process drains within 10 s of SIGTERM (evproto.lifecycle)


@dataclass(frozen=True, slots=True)
class CtlAnswer:
    exit_code: int
    ok: bool
    message: str
    status: dict[str, Any] | None


class System:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.stack = LocalStack(workdir)
        self.api = CentralApi(self.stack.http_url, self.stack.operator_token)
        self.proxies: dict[str, LinkCutter] = {}
        self.drivers: list[DriverRun] = []
        self.central_starts = 0
        self.conservation_checked = False
        self._central_args: tuple[str, ...] = ()
        self._down: set[str] = set()  # processes a scenario took down on purpose
        self._driver_dirs: set[Path] = {workdir / "drivers"}  # where driver secrets are

    # --- starting ---------------------------------------------------------------------

    def start_broker(self) -> None:
        self.stack.start_broker()

    def start(
        self,
        cps: int = 2,
        *,
        proxied: tuple[str, ...] = (),
        central_args: tuple[str, ...] = (),
        engine_args: tuple[str, ...] = (),
        monitor_args: tuple[str, ...] = (),
        ready_timeout: float = 30.0,
    ) -> None:
        """Central and ``cps`` charging points; returns when every CP is ACTIVE."""
        self._central_args = central_args
        self.start_central()
        for index in range(cps):
            self.add_cp(
                index,
                proxied=f"CP-{index}" in proxied,
                engine_args=engine_args,
                monitor_args=monitor_args,
            )
        self.wait_all_active(ready_timeout)

    def start_central(self) -> ManagedProcess:
        central = self.stack.central or self.stack.central_process(*self._central_args)
        self._down.discard(central.name)
        self.central_starts += 1
        return central.start()

    def add_cp(
        self,
        index: int,
        *,
        proxied: bool = False,
        engine_args: tuple[str, ...] = (),
        monitor_args: tuple[str, ...] = (),
    ) -> ChargingPoint:
        central = None
        if proxied:
            proxy = LinkCutter(self.stack.host, self.stack.listen_port).start()
            self.proxies[f"CP-{index}"] = proxy
            central = proxy.address
        return self.stack.start_cp(
            index,
            central=central,
            engine_args=(*ENGINE_ARGS, *engine_args),
            monitor_args=(*MONITOR_ARGS, *monitor_args),
        )

    def cp(self, cp_id: str) -> ChargingPoint:
        return self.stack.cps[cp_id]

    @property
    def central(self) -> ManagedProcess:
        assert self.stack.central is not None
        return self.stack.central

    # --- taking things down and up -------------------------------------------------

    def kill(self, process: ManagedProcess) -> None:
        """SIGKILL: no drain, no goodbye."""
        self._down.add(process.name)
        process.kill()

    def start_again(self, process: ManagedProcess) -> None:
        """Start a process the scenario took down, with the same command line."""
        assert not process.alive, f"{process.name} is still running"
        if process is self.stack.central:
            self.start_central()
            return
        self._down.discard(process.name)
        process.start()

    def restart_central(self) -> None:
        """A graceful restart: SIGTERM, drain, start again."""
        code = self.central.stop(_STOP_GRACE_S)
        assert code == 0, f"the central exited {code} on SIGTERM"
        self.start_central()

    def stop_broker(self) -> None:
        assert self.stack.broker is not None
        self.stack.broker.stop()

    def start_broker_again(self, *, create_topics: bool) -> None:
        """The same port, empty memory; with ``create_topics`` the harness makes the
        topics again (as Strimzi's topic operator would), else the services must."""
        assert self.stack.broker is not None
        self.stack.broker.start(create=create_topics)

    # --- what people do -----------------------------------------------------------

    def ctl(self, cp_id: str, command: str, timeout: float = 30.0) -> CtlAnswer:
        """``evengine ctl COMMAND``: the person at the charging point."""
        done = self.cp(cp_id).ctl(command, "--json", timeout=timeout)
        try:
            body = json.loads(done.stdout)
        except ValueError:
            return CtlAnswer(done.returncode, False, done.stderr.strip(), None)
        return CtlAnswer(done.returncode, body["ok"], body["message"], body["status"])

    def engine_status(self, cp_id: str) -> dict[str, Any]:
        """What ``evengine ctl status`` shows the person at the CP."""
        answer = self.ctl(cp_id, "status")
        assert answer.ok and answer.status is not None, answer
        return answer.status

    def driver(self, driver_id: str, *args: str, state_dir: Path | None = None) -> DriverRun:
        """``evdriver --json ARGS`` as driver ``driver_id``, started."""
        if state_dir is not None:
            self._driver_dirs.add(state_dir)
        process = self.stack.driver_process(driver_id, "--json", *args, state_dir=state_dir)
        run = DriverRun(driver_id, process.start())
        self.drivers.append(run)
        return run

    def request(
        self,
        driver_id: str,
        cp_id: str,
        *,
        max_kwh: float | None = None,
        minutes: float | None = None,
        state_dir: Path | None = None,
    ) -> DriverRun:
        limits: list[str] = []
        if max_kwh is not None:
            limits += ["--max-kwh", str(max_kwh)]
        if minutes is not None:
            limits += ["--minutes", str(minutes)]
        return self.driver(driver_id, "request", cp_id, *limits, state_dir=state_dir)

    # --- what the operator sees -------------------------------------------------------

    def wait_cp(self, cp_id: str, timeout: float, **fields: Any) -> dict[str, Any]:
        """The CP's tile once it shows ``fields`` (e.g. ``state="STOPPED"``)."""

        seen: list[dict[str, Any] | None] = [None]

        def shows() -> dict[str, Any] | None:
            self.assert_running()
            seen[0] = self.api.cps().get(cp_id)
            tile = seen[0]
            return tile if tile and all(tile.get(k) == v for k, v in fields.items()) else None

        try:
            return wait_until(shows, timeout, f"{cp_id} shows {fields} in /api/cps")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the tile: {seen[0]}") from None

    def wait_supplying(self, cp_id: str, driver_id: str, timeout: float = 15) -> dict[str, Any]:
        """The CP's tile once it shows ``driver_id`` supplying and some kWh delivered."""
        self.wait_cp(cp_id, timeout, state="SUPPLYING", driver_id=driver_id)

        def delivering() -> dict[str, Any] | None:
            tile = self.api.cp(cp_id)
            return tile if tile["kwh"] > 0 else None

        return wait_until(delivering, 5, f"energy flows at {cp_id}")

    def wait_all_active(self, timeout: float) -> None:
        want = set(self.stack.cps)

        def all_active() -> bool:
            self.assert_running()
            cps = self.api.cps()
            return want <= cps.keys() and all(cps[c]["state"] == "ACTIVE" for c in want)

        wait_until(all_active, timeout, f"{len(want)} charging points ACTIVE")

    # --- checks ------------------------------------------------------------------------

    def assert_running(self) -> None:
        """Fail at once, not at a deadline, when a service process has died."""
        dead = self.unexpected_exits()
        assert not dead, "; ".join(dead)

    def unexpected_exits(self) -> list[str]:
        """Service processes that ended without the scenario taking them down."""
        return [
            f"{p.name} exited with code {p.proc.returncode}"
            for p in self.stack.processes()
            if p.proc is not None and not p.alive and p.name not in self._down
        ]

    def check_conservation(
        self, *, since: float | None = None, timeout: float = 20.0, garbage_expected: bool = False
    ) -> Audit:
        """Every authorized session ended with exactly one ticket that matches its
        telemetry and /api/sessions; no service process crashed. ``since`` limits
        /api/sessions to sessions authorized after it (the broker forgot the rest);
        ``garbage_expected``: the scenario wrote undecodable records on purpose."""
        last: list[Audit] = []

        def balanced() -> bool:
            contents = read_topics(self.stack.bootstrap, AUDITED_TOPICS, self.open_sealed)
            listed = [s for s in self.api.sessions() if since is None or _after(s, since)]
            if garbage_expected:
                contents.undecodable.clear()
            unenrolled = frozenset(
                s["driver_id"] for s in listed if self._driver_secret(s["driver_id"]) is None
            )
            last[:] = [audit(contents, listed, unenrolled)]
            last[0].problems += self.unexpected_exits()
            return not last[0].problems

        try:
            wait_until(balanced, timeout, "the sessions to balance")
        except AssertionError:
            if not last:
                raise
            found = "\n  ".join(last[0].problems)
            raise AssertionError(f"conservation broken:\n  {found}\n{last[0].summary()}") from None
        result = last[0]
        if since is None and self.central_starts == 1:
            self._check_metrics(result)
        self.conservation_checked = True
        return result

    def _driver_secret(self, driver_id: str) -> str | None:
        """The driver's credential from its state directory (None: never enrolled)."""
        for directory in self._driver_dirs:
            secret = SecretFile(
                directory / f"{driver_id}.secret", what="driver secret", remedy=""
            ).load()
            if secret is not None:
                return secret
        return None

    def open_sealed(self, sealed: Sealed, topic: Topic) -> Message:
        """What the central sealed for a driver, opened with the driver's own secret."""
        secret = self._driver_secret(sealed.recipient)
        if secret is None:
            raise ProofError(f"sealed for {sealed.recipient}, whose secret the harness lacks")
        return open_sealed(sealed, driver_root_key(secret), topic)

    def _check_metrics(self, result: Audit) -> None:
        """One central ran the whole scenario: its counters tell the same story."""
        m = self.api.metrics()
        p = "evcharging_central_"
        counted = {
            "sessions authorized": (m.value(f"{p}sessions_started_total"), result.authorized),
            "completed": (m.value(f"{p}sessions_completed_total"), result.completed),
            "aborted or cancelled": (m.value(f"{p}sessions_aborted_total"), result.not_completed),
        }
        for what, (counted_by_metric, audited) in counted.items():
            assert counted_by_metric == audited, (
                f"/metrics counts {counted_by_metric} {what}, the topics {audited}"
            )
        for name, billed in (("energy_delivered_kwh", result.kwh), ("revenue_eur", result.eur)):
            summed = m.value(f"{p}{name}_total")
            assert abs(summed - billed) < 1e-6 * max(1, result.authorized), (
                f"/metrics {name} {summed}, tickets {billed}"
            )

    def log_tails(self, lines: int = 25) -> str:
        logs: list[tuple[str, Path]] = [("broker", self.workdir / "broker.log")]
        logs += [(p.name, p.log_path) for p in self.stack.processes()]
        for run in self.drivers:
            logs.append((f"{run.process.name} stderr", run.process.log_path))
            if run.process.stdout_path is not None:
                logs.append((f"{run.process.name} stdout", run.process.stdout_path))
        parts = []
        for name, path in logs:
            try:
                text = path.read_text(errors="replace").splitlines()[-lines:]
            except FileNotFoundError:
                continue
            parts.append(f"----- {name} ({path}) -----\n" + "\n".join(text))
        return "\n".join(parts)

    # --- the end ----------------------------------------------------------------------

    def shutdown(self) -> dict[str, int | None]:
        """SIGTERM to every process at once; their exit codes (None: killed after the grace)."""
        procs = [run.process for run in self.drivers] + self.stack.processes()
        for proc in procs:
            proc.signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_S
        codes: dict[str, int | None] = {}
        for proc in procs:
            if proc.proc is None:
                continue
            try:
                codes[proc.name] = proc.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes[proc.name] = None
        for proxy in self.proxies.values():
            proxy.close()
        if self.stack.broker is not None:
            self.stack.broker.stop()
        return codes


def _after(session: dict[str, Any], since: float) -> bool:
    return float(session.get("authorized_at") or session.get("started_at") or 0) >= since
