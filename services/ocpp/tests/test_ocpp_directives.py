"""Directives from the central reach the stations, from the moment the gateway listens."""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from evocpp.gateway import Gateway
from evproto.messages import Directive, DirectiveAction
from evproto.proofs import Signer, cp_key_from_secret, prove
from evproto.schema import new_id
from evproto.topics import Topic

sys.path.insert(0, str(Path(__file__).parent))
from conftest import RawStation, raw_station

BOOT_16 = {"chargePointVendor": "Acme", "chargePointModel": "Wallbox 16"}


async def _next_call(station: RawStation, action: str) -> list[Any]:
    """The gateway's next call named ``action``; its other calls are answered with errors."""
    while True:
        frame = await station.read(timeout=10.0)
        if frame[0] == 2 and frame[2] == action:
            return frame
        if frame[0] == 2:
            await station.send_text(json.dumps([4, frame[1], "NotImplemented", "", {}]))


async def test_a_stop_published_as_soon_as_the_gateway_listens_reaches_the_station(
    gateway: Gateway,
) -> None:
    """The directives are read ("latest") before any station is served: a STOP published
    right after a station came online is obeyed, not skipped by a reader still starting."""
    assert gateway.ready.is_set()
    cp_id, secret = "ST-STOP-1", secrets.token_hex(32)
    gateway.store.save_secret(cp_id, secret)
    async with raw_station(gateway, "ST-STOP") as station:
        boot = await station.call("BootNotification", BOOT_16)
        assert boot[2]["status"] == "Accepted"
        status = {"connectorId": 1, "status": "Available", "errorCode": "NoError"}
        await station.call("StatusNotification", status)
        stop = Directive(
            directive_id=new_id(), cp_id=cp_id, action=DirectiveAction.STOP, sent_at=time.time()
        )
        proven = prove(stop, cp_key_from_secret(secret), Signer.CENTRAL)
        await gateway.kafka.publisher.publish(Topic.DIRECTIVES, cp_id, proven)
        change = await _next_call(station, "ChangeAvailability")
        assert change[3] == {"connectorId": 1, "type": "Inoperative"}
