"""The monitor port over TLS (--tls-cert / --tls-key)."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from evcentral.app import Central
from evcentral.certificate import ServerCertificate
from evproto.auth import registration_proof
from evproto.connection import FramedConnection
from evproto.errors import LinkError
from evproto.messages import CHANNELS, Authenticate, AuthResult, Challenge, Register
from evproto.states import CpState
from evstack.tools import require_tool


def _self_signed(cert: Path, key: Path) -> None:
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    require_tool("openssl", "to make a test certificate")
    cert, key = tmp_path / "central.pem", tmp_path / "central.key"
    _self_signed(cert, key)
    return cert, key


async def test_monitors_register_over_tls(
    centrals, certificate: tuple[Path, Path], new_id, wait_until
) -> None:
    cert, key = certificate
    central: Central = await centrals.start(tls_cert=str(cert), tls_key=str(key))
    trusted = ssl.create_default_context(cafile=str(cert))
    conn = await FramedConnection.connect(
        "127.0.0.1",
        central.monitor_port,
        accept=CHANNELS["monitor<-central"],
        ssl_context=trusted,
    )
    cp_id = new_id("CP")
    challenge = await conn.request(Authenticate(cp_id=cp_id))
    assert isinstance(challenge, Challenge)
    proof = registration_proof("reg-token", challenge.nonce, cp_id)
    result = await conn.request(Register(cp_id=cp_id, location="TLS bay", proof=proof))
    assert isinstance(result, AuthResult) and result.accepted
    await wait_until(lambda: central.registry.state_of(cp_id) is CpState.ACTIVE, what="ACTIVE")
    await conn.close()

    # a client that does not speak TLS gets nowhere, and the port keeps serving
    with pytest.raises((LinkError, OSError)):
        plain = await FramedConnection.connect(
            "127.0.0.1", central.monitor_port, accept=CHANNELS["monitor<-central"], timeout=2.0
        )
        await plain.request(Authenticate(cp_id=cp_id), timeout=2.0)


def test_a_renewed_certificate_is_served_without_a_restart(
    certificate: tuple[Path, Path], tmp_path: Path
) -> None:
    cert, key = certificate
    served = ServerCertificate(str(cert), str(key))
    assert not served.reload_if_changed()  # nothing changed
    renewed_cert, renewed_key = tmp_path / "renewed.pem", tmp_path / "renewed.key"
    _self_signed(renewed_cert, renewed_key)
    renewed_key.replace(key)  # Kubernetes swaps a Secret's files the same way
    assert not served.reload_if_changed()  # a key without its certificate: kept the old one
    renewed_cert.replace(cert)
    assert served.reload_if_changed()
    assert not served.reload_if_changed()
