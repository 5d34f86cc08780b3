"""The whole system as local processes on the embedded broker (``make run``).

The command lines here are the ones the Helm chart runs in pods (``evstack run``
starts them); the test harnesses start their processes through
:class:`LocalStack` too, so what the tests prove is what ``make run`` and the
chart run.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypedDict, Unpack

from evstack.broker import EmbeddedBroker, free_port

__all__ = [
    "ChargingPoint",
    "CpOptions",
    "LocalStack",
    "ManagedProcess",
    "console_script",
    "log_tails",
]

_BIN = Path(sys.executable).parent


def console_script(name: str) -> str:
    """The installed console script beside this interpreter (falls back to PATH)."""
    local = _BIN / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def log_tails(processes: Iterable[ManagedProcess], lines: int = 20) -> str:
    """The last ``lines`` of each process's log, under its name: what a failed test shows."""
    return "\n".join(
        f"--- {p.name}\n" + "\n".join(p.log_text().splitlines()[-lines:]) for p in processes
    )


@dataclass
class ManagedProcess:
    """One OS process the stack started, with its command line kept for restarts."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    stdin_pipe: bool = False
    # When set, stdout goes to this file and only stderr to ``log_path`` (a driver's --json).
    stdout_path: Path | None = None

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.ExitStack() as files:
            log = files.enter_context(open(self.log_path, "ab"))
            out = log
            if self.stdout_path is not None:
                out = files.enter_context(open(self.stdout_path, "ab"))
            self.proc = subprocess.Popen(
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT if out is log else log,
                stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,  # Ctrl-C in the terminal reaches only the stack
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, wait for a graceful exit, SIGKILL after ``timeout``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return self.proc.returncode

    def kill(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(5)

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.send_signal(sig)

    def restart(self) -> ManagedProcess:
        self.stop()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


@dataclass
class ChargingPoint:
    cp_id: str
    engine_port: int
    engine: ManagedProcess
    monitor: ManagedProcess
    control_socket: Path

    def ctl(self, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
        """``evengine ctl ARGS`` at this CP's engine: the person at the charging point."""
        argv = [
            console_script("evengine"),
            "ctl",
            *args,
            "--control-socket",
            str(self.control_socket),
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


class CpOptions(TypedDict, total=False):
    """How :meth:`LocalStack.charging_point` may vary a CP from the default."""

    location: str | None  # default "Bay <index>"
    central: str | None  # the monitor's --central, e.g. a proxy between the two
    engine_args: Sequence[str]  # appended, like the chart's extraArgs
    monitor_args: Sequence[str]


@dataclass
class LocalStack:
    """Broker, central and charging points as processes under ``workdir``."""

    workdir: Path
    kafka_port: int = 0
    listen_port: int = 0
    http_port: int = 0
    ocpp_port: int = 0
    host: str = "127.0.0.1"
    extra_env: dict[str, str] = field(default_factory=dict)
    broker: EmbeddedBroker | None = None
    central: ManagedProcess | None = None
    gateway: ManagedProcess | None = None
    cps: dict[str, ChargingPoint] = field(default_factory=dict)
    # every port handed out: processes bind theirs only when they start, so a
    # fresh free_port() could otherwise return one promised to another process
    _ports: set[int] = field(default_factory=set, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ports = (self.kafka_port, self.listen_port, self.http_port, self.ocpp_port)
        self._ports.update(p for p in ports if p)
        self.kafka_port = self.kafka_port or self._free_port()
        self.listen_port = self.listen_port or self._free_port()
        self.http_port = self.http_port or self._free_port()
        self.ocpp_port = self.ocpp_port or self._free_port()
        self.operator_token = self._token("operator-token")
        self.viewer_token = self._token("viewer-token")
        self.registration_token = self._token("registration-token")
        self.enrollment_token = self._token("enrollment-token")

    def _free_port(self) -> int:
        while (port := free_port(self.host)) in self._ports:
            pass
        self._ports.add(port)
        return port

    def _token(self, name: str) -> str:
        path = self.workdir / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o600)
        return path.read_text().strip()

    # --- addresses ---------------------------------------------------------------

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.kafka_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def central_address(self) -> str:
        return f"{self.host}:{self.listen_port}"

    @property
    def ocpp_url(self) -> str:
        return f"ws://{self.host}:{self.ocpp_port}/ocpp/<stationId>"

    def _common_env(self) -> dict[str, str]:
        return {"EV_KAFKA": self.bootstrap, "PYTHONUNBUFFERED": "1", **self.extra_env}

    # --- components ----------------------------------------------------------------

    def start_broker(self) -> EmbeddedBroker:
        self.broker = EmbeddedBroker(
            self.kafka_port, self.host, log_path=self.workdir / "broker.log"
        )
        self.broker.start()
        return self.broker

    def central_process(self, *extra: str) -> ManagedProcess:
        argv = [
            console_script("evcentral"),
            "--kafka", self.bootstrap,
            "--db", str(self.workdir / "central.db"),
            "--listen", self.central_address,
            "--http", f"{self.host}:{self.http_port}",
            *extra,
        ]  # fmt: skip
        env = {
            **self._common_env(),
            "EV_OPERATOR_TOKEN_FILE": str(self.workdir / "operator-token"),
            "EV_VIEWER_TOKEN_FILE": str(self.workdir / "viewer-token"),
            "EV_REGISTRATION_TOKEN_FILE": str(self.workdir / "registration-token"),
            "EV_ENROLLMENT_TOKEN_FILE": str(self.workdir / "enrollment-token"),
        }
        self.central = ManagedProcess("central", argv, env, self.workdir / "central.log")
        return self.central

    def start_central(self, *extra: str) -> ManagedProcess:
        return self.central_process(*extra).start()

    def charging_point(self, index: int, **options: Unpack[CpOptions]) -> ChargingPoint:
        """The engine and monitor of ``CP-<index>`` (not started); see :class:`CpOptions`."""
        cp_id = f"CP-{index}"
        location = options.get("location")
        cp_dir = self.workdir / cp_id
        cp_dir.mkdir(parents=True, exist_ok=True)
        port = self._free_port()
        control = cp_dir / "engine.sock"
        engine = ManagedProcess(
            f"{cp_id}/engine",
            [
                console_script("evengine"),
                "--cp-id",
                cp_id,
                "--kafka",
                self.bootstrap,
                "--listen",
                f"{self.host}:{port}",
                "--location",
                location or f"Bay {index}",
                "--control-socket",
                str(control),
                "--console",
                "off",
                *options.get("engine_args", ()),
            ],
            self._common_env(),
            cp_dir / "engine.log",
        )
        monitor = ManagedProcess(
            f"{cp_id}/monitor",
            [
                console_script("evmonitor"),
                "--cp-id",
                cp_id,
                "--engine",
                f"{self.host}:{port}",
                "--central",
                options.get("central") or self.central_address,
                "--state-dir",
                str(cp_dir),
                *options.get("monitor_args", ()),
            ],
            {
                **self._common_env(),
                "EV_REGISTRATION_TOKEN_FILE": str(self.workdir / "registration-token"),
            },
            cp_dir / "monitor.log",
        )
        cp = ChargingPoint(cp_id, port, engine, monitor, control)
        self.cps[cp_id] = cp
        return cp

    def start_cp(self, index: int, **options: Unpack[CpOptions]) -> ChargingPoint:
        cp = self.charging_point(index, **options)
        cp.engine.start()
        cp.monitor.start()
        return cp

    def driver_process(
        self, driver_id: str, *args: str, state_dir: Path | None = None
    ) -> ManagedProcess:
        """``evdriver ARGS`` as in the chart's driver pods: id, state and Kafka from the
        environment. Not started and not one of :meth:`processes`; stdout (the
        ``--json`` events) is kept apart from the diagnostics on stderr."""
        drivers = self.workdir / "drivers"
        drivers.mkdir(parents=True, exist_ok=True)
        run = 0  # each run of the same driver gets its own files
        while (drivers / f"{driver_id}.{run}.out").exists():
            run += 1
        (drivers / f"{driver_id}.{run}.out").touch()  # reserved for this run
        env = {
            **self._common_env(),
            "EV_ID": driver_id,
            "EV_STATE_DIR": str(state_dir or drivers),
            "EV_ENROLLMENT_TOKEN_FILE": str(self.workdir / "enrollment-token"),
        }
        return ManagedProcess(
            f"driver {driver_id}",
            [console_script("evdriver"), *args],
            env,
            drivers / f"{driver_id}.{run}.log",
            stdout_path=drivers / f"{driver_id}.{run}.out",
        )

    def gateway_process(self, *extra: str) -> ManagedProcess:
        """``evocpp`` for a development system: stations enrol and are accepted at once,
        and each connector registers at the central with the registration token."""
        argv = [
            console_script("evocpp"),
            "--kafka", self.bootstrap,
            "--central", self.central_address,
            "--listen", f"{self.host}:{self.ocpp_port}",
            "--state-dir", str(self.workdir / "ocpp"),
            "--enrollment", "auto",
            *extra,
        ]  # fmt: skip
        env = {
            **self._common_env(),
            "EV_REGISTRATION_TOKEN_FILE": str(self.workdir / "registration-token"),
        }
        self.gateway = ManagedProcess("ocpp", argv, env, self.workdir / "ocpp.log")
        return self.gateway

    def start_gateway(self, *extra: str) -> ManagedProcess:
        return self.gateway_process(*extra).start()

    def allow_driver_enrollment(self, state_dir: Path) -> Path:
        """Put the enrollment token where a driver with this state directory finds it
        (``make run``: the README's driver command enrolls itself on first use)."""
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / "enrollment-token"
        path.write_text(self.enrollment_token + "\n")
        path.chmod(0o600)
        return path

    def processes(self) -> list[ManagedProcess]:
        procs = [p for cp in self.cps.values() for p in (cp.monitor, cp.engine)]
        procs += [self.gateway] if self.gateway else []
        return procs + ([self.central] if self.central else [])

    def stop(self) -> None:
        """Graceful: every process gets SIGTERM at once, then the broker stops."""
        for proc in self.processes():
            proc.signal(signal.SIGTERM)
        for proc in self.processes():
            proc.stop()
        if self.broker is not None:
            self.broker.stop()
