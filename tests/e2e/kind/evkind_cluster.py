"""The cluster end-to-end tests' access to the cluster: a release of the chart in it.

They talk to the cluster only through ``kubectl`` and ``helm``, always with
the context ``EV_KUBE_CONTEXT`` (default ``kind-<EV_KIND_CLUSTER>``; never
whatever cluster the current context happens to point at) and the values file
``EV_VALUES`` (default k8s/values-kind.yaml); without that cluster they skip,
saying why. ``make kind-up images load e2e-cluster`` sets everything up, or
``make minikube-up images load e2e-cluster CLUSTER=minikube``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from evstack.waiting import wait_until

REPO = Path(__file__).resolve().parents[3]
KIND_CLUSTER = os.environ.get("EV_KIND_CLUSTER", "evcharging")
NAMESPACE = os.environ.get("EV_KIND_NAMESPACE", "evcharging")
RELEASE = os.environ.get("EV_HELM_RELEASE", "evcharging")
REGISTRY = os.environ.get("EV_IMAGE_REGISTRY", "evcharging")
CONTEXT = os.environ.get("EV_KUBE_CONTEXT") or f"kind-{KIND_CLUSTER}"
VALUES = REPO / os.environ.get("EV_VALUES", "k8s/values-kind.yaml")


def _run(argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


def why_no_cluster() -> str | None:
    for tool in ("kubectl", "helm"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    contexts = _run(["kubectl", "config", "get-contexts", "-o", "name"]).stdout.split()
    if CONTEXT not in contexts:
        return f"kubectl has no context {CONTEXT!r} (run `make kind-up` or `make minikube-up`)"
    if _run(["kubectl", "--context", CONTEXT, "get", "--raw", "/readyz"], 15).returncode != 0:
        return f"the cluster of context {CONTEXT!r} does not answer"
    return None


def wait_for(what: str, condition: Callable[[], bool], deadline_s: float) -> None:
    wait_until(condition, deadline_s, what, poll=1.0)  # each poll is a kubectl call


@dataclass(frozen=True)
class Release:
    """The installed release, and the commands that reach into its pods."""

    name: str
    namespace: str
    fullname: str

    def kubectl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return _run(["kubectl", "--context", CONTEXT, "-n", self.namespace, *args], timeout)

    def exec(
        self, pod: str, *command: str, container: str | None = None, timeout: float = 60.0
    ) -> subprocess.CompletedProcess[str]:
        where = ["-c", container] if container else []
        return self.kubectl("exec", pod, *where, "--", *command, timeout=timeout)

    def helm(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return _run(["helm", *args, "--kube-context", CONTEXT, "-n", self.namespace], timeout)

    def popen_exec(self, pod: str, *command: str) -> subprocess.Popen[str]:
        argv = ["kubectl", "--context", CONTEXT, "-n", self.namespace, "exec", pod, "--", *command]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def api(self, path: str) -> object:
        """GET the central's REST API from inside its pod (no port-forward needed), with
        the operator token the pod mounts."""
        fetch = (
            "import sys, urllib.request; "
            "token = open('/etc/evcharging/tokens/operator-token').read().strip(); "
            "request = urllib.request.Request('http://127.0.0.1:8080' + sys.argv[1], "
            "headers={'Authorization': 'Bearer ' + token}); "
            "print(urllib.request.urlopen(request, timeout=5).read().decode())"
        )
        done = self.exec(
            f"{self.fullname}-central-0", "python", "-c", fetch, path, container="central"
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def in_state(self, cp_id: str, state: str) -> Callable[[], bool]:
        return lambda: self.cp_state(cp_id) == state

    def cp_state(self, cp_id: str) -> str | None:
        try:
            cp = self.api(f"/api/cps/{cp_id}")
        except AssertionError:
            return None  # the central is restarting
        return str(cp["state"]) if isinstance(cp, dict) else None


def _image_tag() -> str:
    tag = os.environ.get("EV_IMAGE_TAG")
    if tag:
        return tag
    # `make images` tags with the chart's appVersion.
    chart = (REPO / "charts" / "evcharging" / "Chart.yaml").read_text()
    return next(
        line.split(":", 1)[1].strip().strip('"')
        for line in chart.splitlines()
        if line.startswith("appVersion:")
    )


def install() -> Release:
    """helm upgrade --install (like `make deploy`), then every CP ACTIVE."""
    installed = _run(
        [
            "helm", "upgrade", "--install", RELEASE, str(REPO / "charts" / "evcharging"),
            "--kube-context", CONTEXT, "--namespace", NAMESPACE, "--create-namespace",
            "-f", str(VALUES),
            "--set", f"global.image.registry={REGISTRY}",
            "--set", f"global.image.tag={_image_tag()}",
            "--wait", "--timeout", "10m",
        ],
        timeout=660,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr
    fullname = RELEASE if "evcharging" in RELEASE else f"{RELEASE}-evcharging"
    ev = Release(RELEASE, NAMESPACE, fullname)
    for cp in ("CP-0", "CP-1", "CP-2"):
        wait_for(f"{cp} is ACTIVE", ev.in_state(cp, "ACTIVE"), 180)
    return ev
