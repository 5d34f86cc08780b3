"""TLS to the central: the certificate and the host name are checked."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import pytest
from evproto.messages import CentralUnreachable
from evproto.states import Health
from evstack.tools import require_tool


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=30)


def _make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return key, cert


def _make_server_cert(directory: Path, ca: tuple[Path, Path], san: str) -> tuple[Path, Path]:
    key, csr, cert = directory / "server.key", directory / "server.csr", directory / "server.pem"
    ext = directory / "server.ext"
    ext.write_text(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=central",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]),
        "-CAcreateserial", "-out", str(cert), "-days", "1", "-extfile", str(ext),
    )  # fmt: skip
    return key, cert


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    require_tool("openssl", "to make test certificates")
    ca = _make_ca(tmp_path, "test-ca")
    _, other_ca = _make_ca(tmp_path, "other-ca")
    right_dir, wrong_dir = tmp_path / "right", tmp_path / "wrong"
    right_dir.mkdir()
    wrong_dir.mkdir()
    key, cert = _make_server_cert(right_dir, ca, "IP:127.0.0.1")
    wrong_key, wrong_cert = _make_server_cert(wrong_dir, ca, "DNS:central.elsewhere.example")
    return {
        "ca": ca[1],
        "other_ca": other_ca,
        "key": key,
        "cert": cert,
        "wrong_name_key": wrong_key,
        "wrong_name_cert": wrong_cert,
    }


def serve_tls(central, cert: Path, key: Path) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    central.ssl_context = context


async def restart_with_tls(central, cert: Path, key: Path) -> None:
    await central.kill()
    serve_tls(central, cert, key)
    await central.start()


async def test_the_monitor_logs_in_and_reports_over_tls(rig, certificates):
    await restart_with_tls(rig.central, certificates["cert"], certificates["key"])
    running = await rig.start(
        rig.settings(central_tls=True, central_ca_file=str(certificates["ca"]))
    )
    await rig.eventually(lambda: rig.central.last_health() is Health.OK, what="Status over TLS")
    assert rig.central.logins == ["registered"]
    assert running.metric("evcharging_monitor_central_connected") == 1


@pytest.mark.parametrize(
    ("server", "trusted"),
    [("", "other_ca"), ("wrong_name_", "ca")],
    ids=["unknown-ca", "wrong-host-name"],
)
async def test_a_central_that_fails_verification_is_never_logged_into(
    rig, certificates, server, trusted
):
    await restart_with_tls(rig.central, certificates[f"{server}cert"], certificates[f"{server}key"])
    running = await rig.start(
        rig.settings(central_tls=True, central_ca_file=str(certificates[trusted]))
    )
    await rig.eventually(lambda: rig.engine.notices(CentralUnreachable), what="unreachable")
    await rig.eventually(
        lambda: running.metric("evcharging_monitor_reconnect_attempts_total", peer="central") >= 1,
        what="a retry",
    )
    assert rig.central.logins == []
    assert not running.task.done()


async def test_the_server_name_is_checked_instead_of_the_address(rig, certificates):
    """The chart connects to the Service's address but checks the certificate's DNS
    name (--central-server-name): a local run of its pods reaches 127.0.0.1."""
    await restart_with_tls(
        rig.central, certificates["wrong_name_cert"], certificates["wrong_name_key"]
    )
    await rig.start(
        rig.settings(
            central_tls=True,
            central_ca_file=str(certificates["ca"]),
            central_server_name="central.elsewhere.example",
        )
    )
    await rig.eventually(lambda: rig.central.last_health() is Health.OK, what="Status over TLS")
    assert rig.central.logins == ["registered"]
