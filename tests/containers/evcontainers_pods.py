"""The chart's pods run as containers of the real images, the way the kubelet would.

What a pod's container is comes from the rendered chart (evchart_pods.LocalCluster
resolves it as the kubelet does): the image, its ENTRYPOINT or the container's
``command``, the ``args`` with ``$(VAR)`` expanded, the environment (downward
API, Secret and ConfigMap keys), the user and group of the pod's security
context, a read-only root file system, dropped capabilities, no privilege
escalation, the memory limit, and the volumes: Secrets and ConfigMaps written
out as files and mounted read-only at their mount paths, emptyDirs and claims as
writable directories.

Every container runs in the host's network namespace (``--network host``), so the
containers of one pod share one namespace, as in a pod, and reach the embedded
broker on the host. Like the process smoke test, the addresses in args and env
are mapped to this machine: a Service's name to 127.0.0.1 and the port its pod
got, the Kafka bootstrap to the broker, a pod's own ``0.0.0.0:<port>`` to a free
loopback port. Paths are not rewritten: the volumes are mounted where the chart
says.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evchart_pods import LocalCluster, Pod, expand
from evcontainers_engine import Engine

Container = dict[str, Any]

# Kubernetes quantities -> the engine's: 512Mi -> 512m (binary units both).
_MEMORY = re.compile(r"^(?P<n>[0-9]+)(?P<unit>Ki|Mi|Gi)?$")
_SUPPORTED_POD_SECURITY = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"}
_SUPPORTED_SECURITY = {
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "capabilities",
}


def memory_limit(quantity: str) -> str:
    found = _MEMORY.match(str(quantity))
    assert found, f"memory limit {quantity!r} is not in Ki/Mi/Gi"
    unit = {"Ki": "k", "Mi": "m", "Gi": "g", None: ""}[found["unit"]]
    return f"{found['n']}{unit}"


def security_flags(pod_context: Mapping[str, Any], context: Mapping[str, Any]) -> list[str]:
    """The engine flags for a pod's and a container's securityContext.

    A setting this harness cannot apply fails loudly instead of being dropped.
    """
    assert set(pod_context) <= _SUPPORTED_POD_SECURITY, set(pod_context) - _SUPPORTED_POD_SECURITY
    assert set(context) <= _SUPPORTED_SECURITY, set(context) - _SUPPORTED_SECURITY
    seccomp = pod_context.get("seccompProfile", {"type": "RuntimeDefault"})
    assert seccomp == {"type": "RuntimeDefault"}, seccomp  # the engine's default profile
    merged = {**pod_context, **context}
    flags: list[str] = []
    if "runAsUser" in merged:
        user = int(merged["runAsUser"])
        assert not (merged.get("runAsNonRoot") and user == 0), "runAsNonRoot with uid 0"
        flags += ["--user", f"{user}:{int(merged.get('runAsGroup', user))}"]
    if "fsGroup" in pod_context:
        flags += ["--group-add", str(int(pod_context["fsGroup"]))]
    if context.get("readOnlyRootFilesystem"):
        flags.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    capabilities = context.get("capabilities", {})
    for cap in capabilities.get("drop", []):
        flags += ["--cap-drop", cap]
    for cap in capabilities.get("add", []):
        flags += ["--cap-add", cap]
    return flags


@dataclass
class ContainerCluster:
    """The release's pods as containers of one engine; every name starts with ``prefix``."""

    engine: Engine
    cluster: LocalCluster
    prefix: str
    names: dict[tuple[str, str], str] = field(default_factory=dict)

    def name(self, pod: Pod, container: str) -> str:
        return self.names[(pod.name, container)]

    def run_args(self, pod: Pod, container: Container, volumes: Mapping[str, Path]) -> list[str]:
        """The ``<engine> run`` arguments of one container of ``pod`` (without ``run``)."""
        env = self.cluster.environment(pod, container)
        localized = {k: self.cluster.localize(pod, v, {}) for k, v in env.items()}
        command = [expand(a, env) for a in container.get("command", [])]
        args = [self.cluster.localize(pod, expand(a, env), {}) for a in container.get("args", [])]
        grace = int(pod.spec.get("terminationGracePeriodSeconds", 30))
        flags = [
            "--detach",
            "--name",
            f"{self.prefix}-{pod.name}-{container['name']}",
            "--label",
            f"evcharging-test={self.prefix}",
            "--network",
            "host",
            "--stop-timeout",
            str(grace),
            *security_flags(pod.spec.get("securityContext", {}), container["securityContext"]),
        ]
        memory = container.get("resources", {}).get("limits", {}).get("memory")
        if memory:
            flags += ["--memory", memory_limit(memory)]
        if container.get("stdin"):
            flags.append("--interactive")
        if container.get("tty"):
            flags.append("--tty")
        for key, value in localized.items():
            flags += ["--env", f"{key}={value}"]
        writable = {v["name"] for v in pod.spec.get("volumes", []) if "emptyDir" in v}
        writable |= set(pod.claims)
        for mount in container.get("volumeMounts", []):
            assert "subPath" not in mount, f"{pod.name}: subPath mounts are not supported"
            read_only = mount.get("readOnly", False) or mount["name"] not in writable
            spec = f"{volumes[mount['name']]}:{mount['mountPath']}" + (":ro" if read_only else "")
            flags += ["--volume", spec]
        if command:
            flags += ["--entrypoint", command[0]]
        return [*flags, container["image"], *command[1:], *args]

    def start(self, pod: Pod) -> list[str]:
        """Run every container of ``pod``; their engine names."""
        assert not pod.spec.get("initContainers"), f"{pod.name}: init containers"
        volumes = self.cluster.volumes(pod)
        writable = {v["name"] for v in pod.spec.get("volumes", []) if "emptyDir" in v}
        for name in writable | set(pod.claims):
            # An emptyDir is world-writable; a claim is writable by the pod's fsGroup.
            volumes[name].chmod(0o777)
        started = []
        for container in pod.spec["containers"]:
            argv = self.run_args(pod, container, volumes)
            self.engine.run("run", *argv, timeout=60)
            name = argv[argv.index("--name") + 1]
            self.names[(pod.name, container["name"])] = name
            started.append(name)
        return started

    def exec(
        self, pod: Pod, container: str, *command: str, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl exec <pod> -c <container> -- <command>``: the container's user and env."""
        return self.engine.run("exec", self.name(pod, container), *command, timeout=timeout)

    def exec_in_background(self, pod: Pod, container: str, *command: str) -> subprocess.Popen[str]:
        return self.engine.popen("exec", self.name(pod, container), *command)

    def state(self, name: str) -> dict[str, Any]:
        found = self.engine.inspect("container", name)
        assert found is not None, f"no container {name}"
        state: dict[str, Any] = found["State"]
        return state

    def stop(self, name: str, grace_s: int) -> tuple[int, float]:
        """SIGTERM, SIGKILL after ``grace_s``: (exit code, seconds it took)."""
        began = time.monotonic()
        self.engine.run("stop", "--time", str(grace_s), name, timeout=grace_s + 30)
        took = time.monotonic() - began
        return int(self.state(name)["ExitCode"]), took

    def kill(self, name: str) -> None:
        self.engine.run("kill", name)

    def start_again(self, name: str) -> None:
        """The kubelet's restart of a container: same container, same volumes and args."""
        self.engine.run("start", name)

    def logs(self, name: str) -> str:
        done = self.engine.run("logs", "--tail", "80", name, check=False)
        return done.stdout + done.stderr

    def all_logs(self) -> str:
        return "\n".join(f"--- {name} ---\n{self.logs(name)}" for name in self.names.values())

    def remove_all(self) -> None:
        found = self.engine.run(
            "ps", "--all", "--quiet", "--filter", f"label=evcharging-test={self.prefix}"
        )
        ids = found.stdout.split()
        if ids:
            self.engine.run("rm", "--force", *ids, timeout=120)
