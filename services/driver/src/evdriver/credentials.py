"""The driver's credential: its secret in ``<state-dir>/<id>.secret`` (0600), and the
self-enrollment that gets one on first use where the operator allows it.

Enrollment travels on Kafka, the one network a driver reaches (in the chart
drivers may talk to Kafka only): an ``EnrollRequest`` proven with the
enrollment token carries a one-time X25519 key; the central answers with the
secret sealed to that key, so other token holders reading the answer learn
nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from evproto.errors import AuthError, ConfigError, ProofError
from evproto.logs import kv
from evproto.messages import EnrollRequest, EnrollResponse
from evproto.proofs import EnrollmentKeyPair, Signer, driver_root_key, prove, token_key
from evproto.schema import new_id
from evproto.secret_file import SecretFile
from evproto.topics import Topic

from evdriver.link import DriverLink, Inbound

__all__ = ["DEFAULT_TOKEN_FILE", "DriverSecret", "NotEnrolled", "enroll", "find_token"]

log = logging.getLogger("evdriver.credentials")

# Where the driver looks for an enrollment token when none is configured: ``make run``
# puts one in the default state directory, so the README's first command works as printed.
DEFAULT_TOKEN_FILE = "enrollment-token"


class NotEnrolled(AuthError):
    code = "not_enrolled"
    default_message = "this driver has no credential and cannot enroll"


class DriverSecret:
    def __init__(self, state_dir: Path, driver_id: str) -> None:
        self.file = SecretFile(
            state_dir / f"{driver_id}.secret",
            what="driver secret",
            remedy="remove it; the operator revokes the driver (DELETE /api/drivers/ID) "
            "and it enrolls again",
        )

    def root_key(self) -> bytes | None:
        secret = self.file.load()
        return None if secret is None else driver_root_key(secret)

    def save(self, secret: str) -> bytes:
        self.file.save(secret)
        return driver_root_key(secret)


def find_token(configured: str, state_dir: Path) -> str:
    """The enrollment token: the setting, else ``<state-dir>/enrollment-token``, else ''."""
    if configured:
        return configured
    path = state_dir / DEFAULT_TOKEN_FILE
    try:
        with open(path, "rb") as fh:
            return fh.read(1024).decode("utf-8", "replace").strip()
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise ConfigError(f"cannot read the enrollment token {path}: {exc.strerror}") from None


async def enroll(link: DriverLink, driver_id: str, token: str, timeout: float) -> str:
    """Ask the central for a credential; the new secret, or :class:`NotEnrolled`."""
    pair = EnrollmentKeyPair()
    request = prove(
        EnrollRequest(
            request_id=new_id(),
            driver_id=driver_id,
            public_key=pair.public,
            sent_at=time.time(),
        ),
        token_key(token),
        Signer.ENROLLING,
    )
    await link.publish(Topic.SUPPLY_REQUESTS, driver_id, request, timeout)
    log.info("enrolling %s", kv(driver=driver_id, req=request.request_id))
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            inbound = await _next(link, left)
        except TimeoutError:
            break
        inbound.ack()
        answer = inbound.msg
        if not isinstance(answer, EnrollResponse) or answer.request_id != request.request_id:
            continue
        if not answer.accepted:
            raise NotEnrolled(f"the central refused to enroll {driver_id}: {answer.reason}")
        try:
            return pair.open(answer)
        except ProofError as exc:
            raise NotEnrolled(f"the enrollment answer is unusable: {exc.message}") from None
    raise NotEnrolled(
        f"no answer to the enrollment of {driver_id} within {timeout:g} s "
        "(is the enrollment token right, and self-enrollment on at the central?)"
    )


async def _next(link: DriverLink, timeout: float) -> Inbound:
    return await asyncio.wait_for(link.get(), timeout)
