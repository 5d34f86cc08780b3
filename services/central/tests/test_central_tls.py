"""The monitor port over TLS (--tls-cert / --tls-key)."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from evcentral.app import Central
from evproto.auth import registration_proof
from evproto.connection import FramedConnection
from evproto.errors import LinkError
from evproto.messages import CHANNELS, Authenticate, AuthResult, Challenge, Register
from evproto.states import CpState


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        if os.environ.get("EV_REQUIRE_TOOLS") == "1":
            pytest.fail("openssl is required (EV_REQUIRE_TOOLS=1) to make test certificates")
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "central.pem", tmp_path / "central.key"
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
