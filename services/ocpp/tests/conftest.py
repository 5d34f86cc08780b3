"""The gateway in-process on the session's embedded broker, and raw WebSocket clients.

``gateway`` runs :class:`evocpp.gateway.Gateway` on a free port with enrollment
``auto`` (a test may ask for another mode with ``gateway_settings``); no
central listens on its ``--central`` port, so the CPs' links retry in the
background while the tests talk OCPP-J on the wire.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from evocpp.gateway import Gateway
from evocpp.metrics import OcppMetrics
from evocpp.settings import OcppSettings
from evstack.broker import EmbeddedBroker
from evstack.waiting import eventually
from prometheus_client import CollectorRegistry

HOST = "127.0.0.1"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gateway_settings(
    embedded_broker: EmbeddedBroker, tmp_path: Path
) -> Callable[..., OcppSettings]:
    def make(**overrides: Any) -> OcppSettings:
        values: dict[str, Any] = {
            "kafka": embedded_broker.bootstrap,
            "listen": f"{HOST}:0",
            "central": f"{HOST}:{_closed_port()}",
            "state_dir": str(tmp_path / "gateway"),
            "enrollment": "auto",
            "heartbeat_interval": 10,
            "call_timeout": 5.0,
        }
        values.update(overrides)
        return OcppSettings(**values)

    return make


@pytest.fixture
async def gateway(
    gateway_settings: Callable[..., OcppSettings], request: pytest.FixtureRequest
) -> AsyncIterator[Gateway]:
    overrides = getattr(request, "param", {})
    gw = Gateway(gateway_settings(**overrides), OcppMetrics(CollectorRegistry()))
    stop = asyncio.Event()
    task = asyncio.create_task(gw.serve(stop))
    await eventually(lambda: gw.port != 0 or task.done(), what="the gateway listens")
    if task.done():
        task.result()
    yield gw
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 15)


class RawStation:
    """A WebSocket client that sends and reads OCPP-J frames as JSON text."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._n = 0

    async def send_text(self, text: str) -> None:
        await self.ws.send_str(text)

    async def read(self, timeout: float = 5.0) -> list[Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type is aiohttp.WSMsgType.TEXT, f"expected a text frame, got {msg.type}"
        frame = json.loads(msg.data)
        assert isinstance(frame, list)
        return frame

    async def answer_calls_until(self, wanted_id: str, timeout: float = 5.0) -> list[Any]:
        """Read until the frame answering ``wanted_id``; the gateway's own calls are
        answered with an empty CallError so they do not block it."""
        while True:
            frame = await self.read(timeout)
            if frame[0] == 2:
                await self.send_text(json.dumps([4, frame[1], "NotImplemented", "", {}]))
                continue
            if frame[1] == wanted_id:
                return frame

    async def call(self, action: str, payload: dict[str, Any]) -> list[Any]:
        self._n += 1
        unique_id = f"m{self._n}"
        await self.send_text(json.dumps([2, unique_id, action, payload]))
        return await self.answer_calls_until(unique_id)


@contextlib.asynccontextmanager
async def raw_station(
    gateway: Gateway,
    station_id: str,
    protocol: str = "ocpp1.6",
    password: str | None = None,
) -> AsyncIterator[RawStation]:
    headers = {}
    if password is not None:
        token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"ws://{HOST}:{gateway.port}/ocpp/{station_id}",
            protocols=(protocol,),
            headers=headers,
        ) as ws,
    ):
        assert ws.protocol == protocol
        yield RawStation(ws)


async def handshake_status(gateway: Gateway, station_id: str, protocol: str) -> int:
    """The HTTP status a WebSocket upgrade gets (101 when it is accepted)."""
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(
                f"ws://{HOST}:{gateway.port}/ocpp/{station_id}", protocols=(protocol,)
            ):
                return 101
        except aiohttp.WSServerHandshakeError as exc:
            return exc.status
