"""Driver credentials: enrolled by the operator (HTTP) or by the driver itself (Kafka).

The operator's ``POST /api/drivers`` returns a new driver's secret once. Where
the operator allows it (``--enrollment-token``), a driver enrolls itself on
first use: an ``EnrollRequest`` proven with the token carries a one-time X25519
key, and the secret comes back sealed to it, so other holders of the token
cannot read it. Either way only ids not enrolled yet get a secret: re-keying
a driver is the operator's (revoke, then enroll).
"""

from __future__ import annotations

import json
import logging

from evproto.kafka import Record
from evproto.messages import EnrollRequest, EnrollResponse
from evproto.proofs import new_driver_secret, seal_enrollment_secret

from evcentral.core import Core
from evcentral.journal import LogKind
from evcentral.keyring import Keyring

__all__ = ["DriverEnrollment"]

log = logging.getLogger("evcentral.enrollment")


class DriverEnrollment:
    def __init__(self, core: Core, keys: Keyring) -> None:
        self._db = core.db
        self._outbox = core.outbox
        self._journal = core.journal
        self._metrics = core.metrics
        self._clock = core.clock
        self._keys = keys

    # --- the operator (HTTP) -----------------------------------------------------------

    def enroll(self, driver_id: str) -> str | None:
        """The new driver's secret (shown once), or None when the id is taken."""
        secret = new_driver_secret()
        enrolled = self._keys.enroll(driver_id, secret, "operator")
        self._count("operator", driver_id, enrolled)
        return secret if enrolled else None

    def revoke(self, driver_id: str) -> bool:
        revoked = self._keys.revoke(driver_id)
        if revoked:
            self._journal.record(
                LogKind.ENROLLMENT, f"driver {driver_id} revoked", driver_id=driver_id
            )
        return revoked

    def drivers(self) -> list[dict[str, object]]:
        return self._db.list_drivers()

    # --- self-enrollment (Kafka; the proof was checked by the ProofGate) ------------------

    async def on_enroll(self, msg: EnrollRequest, _record: Record) -> None:
        seen, stored = self._db.processed(msg.request_id)
        if seen:  # the driver may have missed it: the same sealed answer again
            if stored:
                self._outbox.enrollment(EnrollResponse.from_dict(json.loads(stored)))
            return
        secret = new_driver_secret()
        sealed = seal_enrollment_secret(secret, msg.public_key, msg.driver_id)  # bad key: raises
        now = self._clock()
        # The key and the answer are kept together or not at all: a key kept without its
        # answer would make the retried request "already enrolled", its secret lost.
        with self._db.transaction():
            if not self._keys.enroll(msg.driver_id, secret, "self"):
                response = EnrollResponse(
                    request_id=msg.request_id,
                    driver_id=msg.driver_id,
                    accepted=False,
                    reason=f"{msg.driver_id} is already enrolled (or is a CP id); the operator "
                    "must revoke it before it can enroll again",
                    sent_at=now,
                )
            else:
                response = EnrollResponse(
                    request_id=msg.request_id,
                    driver_id=msg.driver_id,
                    accepted=True,
                    sent_at=now,
                    **sealed,
                )
            self._db.mark_processed(
                msg.request_id, msg.TYPE.value, json.dumps(response.to_dict()), now
            )
        self._outbox.enrollment(response)
        self._count("self", msg.driver_id, response.accepted)

    def _count(self, via: str, driver_id: str, accepted: bool) -> None:
        self._metrics.driver_enrollments.labels(via, "accepted" if accepted else "refused").inc()
        what = "enrolled" if accepted else "not enrolled: the id is taken"
        self._journal.record(
            LogKind.ENROLLMENT,
            f"driver {driver_id} {what} ({via})",
            driver_id=driver_id,
            level=logging.INFO if accepted else logging.WARNING,
        )
