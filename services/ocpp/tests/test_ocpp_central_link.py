"""A connector's link to the central: it heartbeats at the interval the central names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from evocpp.central_link import CentralLink
from evocpp.settings import OcppSettings
from evocpp.store import Store
from evproto import auth
from evproto.connection import FramedConnection
from evproto.messages import CHANNELS, AuthResult, Challenge, Register, Status
from evproto.vocabulary import Channel
from evstack.waiting import eventually

TOKEN = "registration-token-for-the-test"
CP_ID = "GW-1-1"


class _Central:
    """Registers the CP, names ``status_interval`` and keeps the Status frames it hears."""

    def __init__(self, status_interval: float) -> None:
        self.status_interval = status_interval
        self.statuses: list[Status] = []

    async def on_link(self, conn: FramedConnection) -> None:
        await conn.recv(5.0)  # Authenticate
        nonce = auth.new_nonce()
        await conn.send(Challenge(nonce=nonce, registered=False))
        register = await conn.recv(5.0)
        assert isinstance(register, Register)
        sealed = auth.seal_secret(auth.new_secret(), TOKEN, nonce, register.cp_id)
        await conn.send(
            AuthResult(
                cp_id=register.cp_id,
                accepted=True,
                sealed_secret=sealed,
                status_interval=self.status_interval,
            )
        )
        while True:
            msg = await conn.recv(5.0)
            if isinstance(msg, Status):
                self.statuses.append(msg)


async def test_a_connector_heartbeats_at_the_interval_the_central_names(
    gateway_settings: Callable[..., OcppSettings], tmp_path: Path
) -> None:
    central = _Central(status_interval=0.1)
    server = await FramedConnection.serve(
        central.on_link, "127.0.0.1", 0, accept=CHANNELS[Channel.CENTRAL_FROM_MONITOR]
    )
    port = server.sockets[0].getsockname()[1]
    # the gateway's own --status-interval would be one heartbeat a minute
    settings = gateway_settings(
        central=f"127.0.0.1:{port}", registration_token=TOKEN, status_interval=60.0
    )
    store = Store(tmp_path / "gateway.db")
    link = CentralLink(
        CP_ID, "Bay 1", settings, store, on_price=lambda _p: None, on_connected=lambda _c: None
    )
    task = asyncio.create_task(link.run())
    try:
        await eventually(lambda: len(central.statuses) >= 5, what="five heartbeats at 0.1 s")
        assert store.secret(CP_ID) is not None
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
        store.close()
