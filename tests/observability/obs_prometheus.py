"""A real Prometheus (Debian's binary) on loopback, scraping local processes.

The configuration is generated: one static target per ``/metrics`` endpoint,
labelled as the prometheus-operator labels the chart's ServiceMonitor and
PodMonitor targets (``job``, ``namespace``, ``pod``, ``container``), so the
dashboard's and the rules' selectors are tried on the labels they meet in a
cluster. Storage lives in a temporary directory; scrapes and rule evaluations
run every second.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from evstack.broker import free_port
from evstack.waiting import wait_until

__all__ = ["Prometheus", "ScrapeTarget", "has_finite_sample"]

_HOST = "127.0.0.1"
_HTTP_TIMEOUT_S = 10.0
_READY_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    """One ``/metrics`` endpoint (``HOST:PORT``) and the labels its series get."""

    address: str
    job: str
    labels: dict[str, str] = field(default_factory=dict)


class PrometheusError(AssertionError):
    """The server said no: an API error or a process that would not start."""


class Prometheus:
    def __init__(
        self,
        binary: str,
        workdir: Path,
        targets: Sequence[ScrapeTarget],
        rule_files: Sequence[Path] = (),
        interval: str = "1s",
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.targets = list(targets)
        self.rule_files = list(rule_files)
        self.interval = interval
        self.port = free_port(_HOST)
        self.url = f"http://{_HOST}:{self.port}"
        self.log_path = workdir / "prometheus.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0  # Unix time of the start: the beginning of every series

    def config(self) -> dict[str, Any]:
        jobs: dict[str, list[dict[str, Any]]] = {}
        for target in self.targets:
            jobs.setdefault(target.job, []).append(
                {"targets": [target.address], "labels": target.labels}
            )
        return {
            "global": {"scrape_interval": self.interval, "evaluation_interval": self.interval},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [
                {"job_name": job, "scrape_timeout": self.interval, "static_configs": configs}
                for job, configs in jobs.items()
            ],
        }

    def start(self) -> Prometheus:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.started_at = time.time()
        config = self.workdir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.workdir / 'data'}",
                    f"--web.listen-address={_HOST}:{self.port}",
                    "--log.level=warn",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self._wait_ready()
        return self

    def wait_scraping(self, timeout: float = _READY_TIMEOUT_S) -> None:
        """Until every target has been scraped (the first scrape comes some seconds after
        the start: Prometheus applies discovered targets every 5 s)."""
        wait_until(
            lambda: len(self.query("up")) == len(self.targets),
            timeout,
            "Prometheus scraping every target",
        )

    def _wait_ready(self) -> None:
        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise PrometheusError(f"prometheus exited: {self.log_text()[-2000:]}")
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as answer:
                return bool(answer.status == 200)

        wait_until(ready, _READY_TIMEOUT_S, "Prometheus ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    # --- HTTP API ---------------------------------------------------------------------

    def api(self, path: str, **params: str | list[str]) -> Any:
        query = urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(
                f"{self.url}/api/v1/{path}?{query}", timeout=_HTTP_TIMEOUT_S
            ) as answer:
                body = json.load(answer)
        except urllib.error.HTTPError as exc:
            body = json.load(exc)
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query at now; the result vector."""
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, step: str = "1s") -> list[Any]:
        """Range query (what a Grafana time series panel runs) over all the server has
        seen, from its start to now; the result matrix."""
        start, end = f"{self.started_at:.3f}", f"{time.time():.3f}"
        data = self.api("query_range", query=expr, start=start, end=end, step=step)
        result: list[Any] = data["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        values: list[str] = self.api(f"label/{label}/values", **{"match[]": match})
        return values

    def active_targets(self) -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = self.api("targets", state="active")["activeTargets"]
        return targets

    def rules(self) -> list[dict[str, Any]]:
        return [rule for group in self.api("rules")["groups"] for rule in group["rules"]]


def has_finite_sample(result: list[dict[str, Any]]) -> bool:
    """True when a query result (vector or matrix) holds at least one non-NaN value."""
    for series in result:
        samples = series.get("values") or [series["value"]]
        if any(math.isfinite(float(value)) for _ts, value in samples):
            return True
    return False
