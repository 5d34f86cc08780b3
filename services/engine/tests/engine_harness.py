"""The engine under test (in-process or as a process) and a stand-in for the central.

Imported by name (``conftest.py`` puts this folder on ``sys.path``).
"""

from __future__ import annotations

import asyncio
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from evengine.control import ControlCommand
from evengine.ctl import send_command
from evengine.engine import Engine
from evproto.errors import EvError
from evproto.kafka import Publisher
from evproto.messages import Directive, DirectiveAction
from evproto.proofs import Signer, prove
from evproto.schema import Message, new_id
from evproto.topics import Topic
from evstack.localstack import ChargingPoint, console_script
from evstack.waiting import wait_until


def unique_cp_id() -> str:
    """A CP id no other test (of any suite sharing the broker) uses."""
    return f"CP-E{secrets.token_hex(4)}"


# The record key a monitor would give the engines of these tests (from the CP secret).
RECORD_KEY = bytes(range(32))


def proven_by_central(msg: Message) -> Message:
    """``msg`` as the central sends it: proven with the CP's record key."""
    return prove(msg, RECORD_KEY, Signer.CENTRAL)


@dataclass
class CentralDouble:
    """Publishes what the central would: directives keyed by CP id, and answers, proven."""

    publisher: Publisher

    async def send(self, topic: Topic, key: str, msg: Message) -> None:
        await asyncio.wait_for(self.publisher.publish(topic, key, proven_by_central(msg)), 15)

    async def directive(self, cp_id: str, action: DirectiveAction, **fields: Any) -> Directive:
        msg = Directive(
            directive_id=new_id(), cp_id=cp_id, action=action, sent_at=time.time(), **fields
        )
        await self.send(Topic.DIRECTIVES, cp_id, msg)
        return msg

    async def start(self, cp_id: str, session_id: str, **fields: Any) -> Directive:
        base: dict[str, Any] = {"session_id": session_id, "driver_id": "D1", "price": 0.5}
        return await self.directive(cp_id, DirectiveAction.START, **{**base, **fields})


@dataclass
class RunningEngine:
    engine: Engine
    stop: asyncio.Event
    task: asyncio.Task[None]

    @property
    def cp_id(self) -> str:
        return self.engine.cp_id

    async def shut_down(self) -> None:
        self.stop.set()
        await asyncio.wait_for(self.task, 15)


@dataclass
class EngineProcess:
    cp: ChargingPoint
    extra: list[str] = field(default_factory=list)

    @property
    def cp_id(self) -> str:
        return self.cp.cp_id

    @property
    def socket(self) -> str:
        return str(self.cp.control_socket)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [console_script("evengine"), "ctl", *args, "--control-socket", self.socket],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def log(self) -> str:
        return self.cp.engine.log_text()


def wait_ready(path: str, timeout: float = 30.0) -> dict[str, Any]:
    """Wait until the engine at ``path`` answers and reads its directives."""

    def ready() -> dict[str, Any] | None:
        try:
            answer = send_command(path, ControlCommand.STATUS, timeout=2.0)
        except EvError:
            return None  # not listening yet
        return answer.status if answer.status and answer.status["broker_up"] else None

    return wait_until(ready, timeout, f"an engine ready on {path}")
