"""What the gateway keeps across restarts, in one SQLite file (mode 0600).

- stations: enrollment status and the hash of the station's Basic-auth password;
- secrets: each connector's CP secret, issued by the central at registration
  (the gateway proves it exactly as a monitor would);
- transactions: which central session each station transaction belongs to, its
  meter start and the last telemetry sent, so a StopTransaction a station queued
  while offline, or sends twice, is billed once.

The ``evocpp stations`` command edits the same file while the gateway runs (WAL).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import os
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DB_NAME",
    "StationRecord",
    "StationStatus",
    "Store",
    "TransactionRecord",
    "hash_password",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    station_id    TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    password_hash TEXT NOT NULL DEFAULT '',
    created_at    REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS cp_secrets (
    cp_id  TEXT PRIMARY KEY,
    secret TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    tx_id          TEXT PRIMARY KEY,
    station_id     TEXT NOT NULL,
    cp_id          TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    driver_id      TEXT NOT NULL,
    price          REAL NOT NULL,
    started_at     REAL NOT NULL,
    meter_start_wh REAL NOT NULL,
    last_seq       INTEGER NOT NULL DEFAULT 0,
    last_kwh       REAL NOT NULL DEFAULT 0,
    max_kwh        REAL,
    ended          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS start_keys (
    start_key TEXT PRIMARY KEY,
    tx_id     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS stopped_cps (
    cp_id TEXT PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
"""
_PBKDF2_ROUNDS = 120_000
DB_NAME = "gateway.db"


class StationStatus(enum.StrEnum):
    PENDING = "pending"  # enrolled by connecting; waits for the operator
    ACCEPTED = "accepted"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class StationRecord:
    station_id: str
    status: StationStatus
    password_hash: str  # empty: the station connects without a password (profile 0)

    def password_ok(self, password: str | None) -> bool:
        if not self.password_hash:
            return True
        return password is not None and verify_password(self.password_hash, password)


@dataclass(frozen=True, slots=True)
class TransactionRecord:
    tx_id: str
    station_id: str
    cp_id: str
    session_id: str
    driver_id: str
    price: float
    started_at: float
    meter_start_wh: float
    last_seq: int
    last_kwh: float
    max_kwh: float | None
    ended: bool


def hash_password(password: str) -> str:
    """``pbkdf2_sha256$rounds$salt$hash``: a copy of the file gives no password away."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), _PBKDF2_ROUNDS)
    return f"pbkdf2_sha256${_PBKDF2_ROUNDS}${salt}${digest.hex()}"


def verify_password(stored: str, password: str) -> bool:
    try:
        scheme, rounds, salt, expected = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(rounds))
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), expected)


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600, exist_ok=True)
        os.chmod(path, 0o600)  # secrets inside: never readable by others
        self._db = sqlite3.connect(path, isolation_level=None, timeout=5.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self.path = path

    def close(self) -> None:
        self._db.close()

    # --- stations -------------------------------------------------------------------

    def station(self, station_id: str) -> StationRecord | None:
        row = self._db.execute(
            "SELECT station_id, status, password_hash FROM stations WHERE station_id = ?",
            (station_id,),
        ).fetchone()
        if row is None:
            return None
        return StationRecord(row["station_id"], StationStatus(row["status"]), row["password_hash"])

    def stations(self) -> list[StationRecord]:
        rows = self._db.execute(
            "SELECT station_id, status, password_hash FROM stations ORDER BY station_id"
        ).fetchall()
        return [StationRecord(r[0], StationStatus(r[1]), r[2]) for r in rows]

    def enroll(
        self, station_id: str, status: StationStatus, password: str | None, now: float
    ) -> StationRecord:
        """Add a station, or change its status (and password when one is given)."""
        password_hash = hash_password(password) if password else ""
        self._db.execute(
            "INSERT INTO stations (station_id, status, password_hash, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (station_id) DO UPDATE SET status = excluded.status, "
            "password_hash = CASE WHEN ? THEN excluded.password_hash "
            "ELSE stations.password_hash END",
            (station_id, status.value, password_hash, now, bool(password)),
        )
        record = self.station(station_id)
        assert record is not None
        return record

    def remove_station(self, station_id: str) -> bool:
        return (
            self._db.execute("DELETE FROM stations WHERE station_id = ?", (station_id,)).rowcount
            > 0
        )

    # --- CP secrets -------------------------------------------------------------------

    def secret(self, cp_id: str) -> str | None:
        row = self._db.execute("SELECT secret FROM cp_secrets WHERE cp_id = ?", (cp_id,)).fetchone()
        return None if row is None else str(row[0])

    def save_secret(self, cp_id: str, secret: str) -> None:
        self._db.execute(
            "INSERT INTO cp_secrets (cp_id, secret) VALUES (?, ?) "
            "ON CONFLICT (cp_id) DO UPDATE SET secret = excluded.secret",
            (cp_id, secret),
        )

    # --- CPs the operator stopped (their station then reports them Unavailable) ---

    def operator_stopped(self, cp_id: str) -> bool:
        return (
            self._db.execute("SELECT 1 FROM stopped_cps WHERE cp_id = ?", (cp_id,)).fetchone()
            is not None
        )

    def set_operator_stopped(self, cp_id: str, stopped: bool) -> None:
        if stopped:
            self._db.execute("INSERT OR IGNORE INTO stopped_cps (cp_id) VALUES (?)", (cp_id,))
        else:
            self._db.execute("DELETE FROM stopped_cps WHERE cp_id = ?", (cp_id,))

    # --- transactions -----------------------------------------------------------------

    def next_transaction_number(self) -> int:
        """OCPP 1.6 transaction ids are integers the central system hands out."""
        row = self._db.execute(
            "INSERT INTO counters (name, value) VALUES ('transaction', 1) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1 RETURNING value"
        ).fetchone()
        return int(row[0])

    def transaction(self, tx_id: str) -> TransactionRecord | None:
        row = self._db.execute("SELECT * FROM transactions WHERE tx_id = ?", (tx_id,)).fetchone()
        if row is None:
            return None
        return TransactionRecord(
            tx_id=row["tx_id"],
            station_id=row["station_id"],
            cp_id=row["cp_id"],
            session_id=row["session_id"],
            driver_id=row["driver_id"],
            price=row["price"],
            started_at=row["started_at"],
            meter_start_wh=row["meter_start_wh"],
            last_seq=row["last_seq"],
            last_kwh=row["last_kwh"],
            max_kwh=row["max_kwh"],
            ended=bool(row["ended"]),
        )

    def open_transaction(self, tx: TransactionRecord) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO transactions (tx_id, station_id, cp_id, session_id, "
            "driver_id, price, started_at, meter_start_wh, last_seq, last_kwh, max_kwh, ended) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tx.tx_id, tx.station_id, tx.cp_id, tx.session_id, tx.driver_id, tx.price,
             tx.started_at, tx.meter_start_wh, tx.last_seq, tx.last_kwh, tx.max_kwh,
             int(tx.ended)),
        )  # fmt: skip

    def transaction_started_as(self, start_key: str) -> str | None:
        """The transaction a StartTransaction with this key (a replay) was given."""
        row = self._db.execute(
            "SELECT tx_id FROM start_keys WHERE start_key = ?", (start_key,)
        ).fetchone()
        return None if row is None else str(row[0])

    def remember_start(self, start_key: str, tx_id: str) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO start_keys (start_key, tx_id) VALUES (?, ?)", (start_key, tx_id)
        )

    def record_telemetry(self, tx_id: str, seq: int, kwh: float) -> None:
        self._db.execute(
            "UPDATE transactions SET last_seq = ?, last_kwh = ? WHERE tx_id = ?",
            (seq, kwh, tx_id),
        )

    def end_transaction(self, tx_id: str) -> bool:
        """Mark it ended; False when it already was (a replayed StopTransaction)."""
        return (
            self._db.execute(
                "UPDATE transactions SET ended = 1 WHERE tx_id = ? AND ended = 0", (tx_id,)
            ).rowcount
            > 0
        )

    def open_transactions(self, cp_id: str) -> list[TransactionRecord]:
        rows = self._db.execute(
            "SELECT tx_id FROM transactions WHERE cp_id = ? AND ended = 0", (cp_id,)
        ).fetchall()
        return [t for r in rows if (t := self.transaction(r[0])) is not None]
