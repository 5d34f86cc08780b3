"""The keys that prove and seal Kafka records (evproto.proofs), as the central holds them.

A CP's record key lives with the CP (``record_key``, learnt at registration or
at each authentication); a driver's root key is in ``driver_credentials``,
cached here. Enrollment and revocation go through this class so the cache
never disagrees with the database.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from evproto.proofs import Purpose, derive_key, driver_root_key

from evcentral.db import Database
from evcentral.registry import Registry

__all__ = ["Keyring"]

_CACHE_MAX = 100_000  # drivers; a full cache is cleared, not grown


class Keyring:
    def __init__(
        self, db: Database, registry: Registry, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = db
        self._registry = registry
        self._clock = clock
        self._drivers: dict[str, bytes | None] = {}

    def cp_key(self, cp_id: str) -> bytes | None:
        cp = self._registry.get(cp_id)
        if cp is None or not cp.record_key:
            return None
        return bytes.fromhex(cp.record_key)

    def driver_key(self, driver_id: str) -> bytes | None:
        """The root key of an enrolled driver (None: unknown or revoked)."""
        if driver_id not in self._drivers:
            if len(self._drivers) >= _CACHE_MAX:
                self._drivers.clear()
            stored = self._db.driver_key(driver_id)
            self._drivers[driver_id] = None if stored is None else bytes.fromhex(stored)
        return self._drivers[driver_id]

    def driver_request_key(self, driver_id: str) -> bytes | None:
        root = self.driver_key(driver_id)
        return None if root is None else derive_key(root, Purpose.DRIVER_REQUESTS)

    def is_cp(self, requester_id: str) -> bool:
        return self._registry.get(requester_id) is not None

    def enroll(self, driver_id: str, secret: str, by: str) -> bool:
        """Keep the root key of a new driver's secret; False if the id is taken.

        May run inside the caller's transaction: the cache forgets the driver rather
        than learning its key, so a rollback leaves nothing cached that is not stored."""
        if self.is_cp(driver_id):
            return False  # a driver named like a CP could not be told apart on a stop
        root = driver_root_key(secret)
        if not self._db.enroll_driver(driver_id, root.hex(), self._clock(), by):
            return False
        self._drivers.pop(driver_id, None)
        return True

    def revoke(self, driver_id: str) -> bool:
        revoked = self._db.revoke_driver(driver_id, self._clock())
        self._drivers.pop(driver_id, None)
        return revoked
