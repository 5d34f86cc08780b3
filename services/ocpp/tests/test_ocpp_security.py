"""Security profile 2: Basic auth over wss://, with a certificate the station trusts."""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import ssl
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from evocpp.gateway import Gateway
from evocpp.metrics import OcppMetrics
from evocpp.settings import OcppSettings
from evocpp.store import StationStatus
from evstack.waiting import eventually
from prometheus_client import CollectorRegistry


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "ocpp.pem", tmp_path / "ocpp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def boot_over_wss(port: int, trusted: ssl.SSLContext, password: str) -> list[object]:
    auth = base64.b64encode(f"SECURE-1:{password}".encode()).decode()
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"wss://127.0.0.1:{port}/ocpp/SECURE-1",
            protocols=("ocpp1.6",),
            headers={"Authorization": f"Basic {auth}"},
            ssl=trusted,
        ) as ws,
    ):
        boot = {"chargePointVendor": "Acme", "chargePointModel": "Secure"}
        await ws.send_str(json.dumps([2, "b1", "BootNotification", boot]))
        answer: list[object] = json.loads((await ws.receive(timeout=5)).data)
        return answer


async def test_profile_2_basic_auth_over_tls(
    gateway_settings: Callable[..., OcppSettings], tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    settings = gateway_settings(enrollment="closed", tls_cert=str(cert), tls_key=str(key))
    gateway = Gateway(settings, OcppMetrics(CollectorRegistry()))
    gateway.store.enroll("SECURE-1", StationStatus.ACCEPTED, "correct horse", 0.0)
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.serve(stop))
    await eventually(lambda: gateway.port != 0, what="the gateway listens")
    assert gateway.url.startswith("wss://")
    trusted = ssl.create_default_context(cafile=str(cert))
    try:
        answer = await boot_over_wss(gateway.port, trusted, "correct horse")
        assert answer[0] == 3 and answer[2]["status"] == "Accepted"  # type: ignore[index]
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await boot_over_wss(gateway.port, trusted, "wrong horse")
        assert refused.value.status == 401
        with pytest.raises(aiohttp.ClientConnectorError):  # a station that does not trust it
            async with aiohttp.ClientSession() as session:
                await session.ws_connect(
                    f"wss://127.0.0.1:{gateway.port}/ocpp/SECURE-1",
                    protocols=("ocpp1.6",),
                    ssl=ssl.create_default_context(),
                )
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)
