"""Read the services' Dockerfile: stages, instructions, ARG/ENV values, the entrypoint.

One Dockerfile at the repository root builds every service (``--build-arg SERVICE=``).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from functools import cache

from evchart_render import REPO

SERVICES = ("central", "engine", "monitor", "driver", "ocpp")

Instruction = tuple[str, str]  # (INSTRUCTION, arguments)


@dataclass(frozen=True)
class Dockerfile:
    preamble: list[Instruction]  # before the first FROM (global ARGs)
    stages: list[tuple[str, list[Instruction]]]  # (stage name or index, instructions)

    @property
    def instructions(self) -> list[tuple[str, str, str]]:
        return [(name, instr, args) for name, body in self.stages for instr, args in body]

    def stage(self, name: str) -> list[Instruction]:
        return next(body for stage, body in self.stages if stage == name)

    def final(self) -> list[Instruction]:
        return self.stages[-1][1]

    def arg_default(self, name: str) -> str:
        """The default of a build argument, declared before the first FROM or in a stage."""
        for instr, args in self.preamble + [(i, a) for _s, i, a in self.instructions]:
            if instr == "ARG" and args.startswith(f"{name}="):
                return args.split("=", 1)[1]
        raise KeyError(name)

    def env(self, stage: str) -> dict[str, str]:
        values: dict[str, str] = {}
        for instr, args in self.stage(stage):
            if instr == "ENV":
                for part in shlex.split(args):
                    key, _, value = part.partition("=")
                    values[key] = value
        return values

    def entrypoint(self) -> list[str]:
        entry = [args for instr, args in self.final() if instr == "ENTRYPOINT"]
        assert len(entry) == 1, "one ENTRYPOINT in the runtime stage"
        parsed: list[str] = json.loads(entry[0])  # the exec form: no shell in between
        return parsed


def parse(text: str) -> Dockerfile:
    joined = re.sub(r"\\\n", " ", text)
    preamble: list[Instruction] = []
    stages: list[tuple[str, list[Instruction]]] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, args = line.partition(" ")
        instr, args = instr.upper(), " ".join(args.split())
        if instr == "FROM":
            name = args.split(" AS ")[1] if " AS " in args else str(len(stages))
            stages.append((name, [(instr, args)]))
        elif stages:
            stages[-1][1].append((instr, args))
        else:
            preamble.append((instr, args))
    return Dockerfile(preamble, stages)


DOCKERFILE = REPO / "Dockerfile"
# The runtime stage links this name to the service's console script, ev<SERVICE>.
SERVICE_LINK = "/app/.venv/bin/ev-service"


@cache
def dockerfile() -> Dockerfile:
    return parse(DOCKERFILE.read_text())


def service_of_image(image: str) -> str:
    """The service (central, engine, …) of ``<registry>/ev<service>:<tag>`` or ``@digest``."""
    repository = image.partition("@")[0]
    if ":" in repository.rpartition("/")[2]:
        repository = repository.rpartition(":")[0]
    service = repository.rpartition("/")[2].removeprefix("ev")
    assert service in SERVICES, f"{image} is not one of the service images"
    return service


def entrypoint_for_image(image: str) -> list[str]:
    """The program the ENTRYPOINT of the image a chart container names runs."""
    assert dockerfile().entrypoint() == [SERVICE_LINK]
    return [f"ev{service_of_image(image)}"]
