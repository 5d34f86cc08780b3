"""SQLite persistence (WAL) with versioned migrations.

Calls run on the event loop's thread on purpose: every statement here touches
a handful of rows by primary key, and the frequent writes (heartbeats,
telemetry progress) are batched once a second. A worker thread would add a hop
per decision and make ordering with the event loop harder, for no gain at this
rate. Commits are durable (WAL with ``synchronous=FULL``: the WAL is synced at
each commit, ~0.1 ms more than NORMAL on the CI disk): an authorization or a
ticket that was answered survives a power loss. Rows nobody needs any more
(answered request ids, ended sessions, drivers not seen) are pruned by
:meth:`Database.prune`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evproto.messages import Origin, Outcome

from evcentral.records import CpRow, SessionRecord, SessionStatus

__all__ = [
    "MIGRATIONS",
    "OPEN_SESSIONS",
    "Database",
    "KeptRecord",
    "SessionFilter",
    "SessionTotals",
]

OPEN_SESSIONS = "open"  # the outcome filter of sessions that have none yet

# Append only: a database at version N runs MIGRATIONS[N:] at start.
MIGRATIONS: list[str] = [
    # 1: the initial schema
    """
    CREATE TABLE charging_points (
        cp_id          TEXT PRIMARY KEY,
        location       TEXT NOT NULL,
        price          REAL NOT NULL,
        out_of_service INTEGER NOT NULL DEFAULT 0,
        stored_key     TEXT NOT NULL,
        registered_at  REAL NOT NULL,
        last_seen      REAL
    );
    CREATE TABLE drivers (
        driver_id  TEXT PRIMARY KEY,
        first_seen REAL NOT NULL,
        last_seen  REAL NOT NULL
    );
    CREATE TABLE sessions (
        session_id    TEXT PRIMARY KEY,
        cp_id         TEXT NOT NULL,
        driver_id     TEXT NOT NULL,
        origin        TEXT NOT NULL,
        status        TEXT NOT NULL,
        request_id    TEXT NOT NULL DEFAULT '',
        authorized_at REAL NOT NULL,
        started_at    REAL,
        ended_at      REAL,
        kwh           REAL NOT NULL DEFAULT 0,
        eur           REAL NOT NULL DEFAULT 0,
        price         REAL NOT NULL,
        last_seq      INTEGER NOT NULL DEFAULT 0,
        elapsed_s     REAL NOT NULL DEFAULT 0,
        outcome       TEXT,
        reason        TEXT NOT NULL DEFAULT '',
        max_kwh       REAL,
        max_eur       REAL,
        max_minutes   REAL
    );
    CREATE TABLE processed_requests (
        request_id   TEXT PRIMARY KEY,
        kind         TEXT NOT NULL,
        response     TEXT,
        processed_at REAL NOT NULL
    );
    """,
    # 2: the session queries of the REST API and the restart scan
    """
    CREATE INDEX sessions_by_cp ON sessions (cp_id, authorized_at);
    CREATE INDEX sessions_by_driver ON sessions (driver_id, authorized_at);
    CREATE INDEX sessions_open ON sessions (status) WHERE status != 'ended';
    """,
    # 3: the dashboard's "today" totals and the sessions view's time filter
    """
    CREATE INDEX sessions_by_time ON sessions (authorized_at);
    """,
    # 4: pruning by age (Database.prune)
    """
    CREATE INDEX processed_by_time ON processed_requests (processed_at);
    CREATE INDEX sessions_by_end ON sessions (ended_at) WHERE status = 'ended';
    CREATE INDEX drivers_by_last_seen ON drivers (last_seen);
    """,
    # 5: idTokens (RFID cards) attached to driver accounts, for OCPP stations
    """
    CREATE TABLE driver_tokens (
        token_hash TEXT PRIMARY KEY,
        driver_id  TEXT NOT NULL,
        added_at   REAL NOT NULL
    );
    """,
    # 6: the keys that prove Kafka records (evproto.proofs): each CP's record key,
    # derived from its secret, and each enrolled driver's root key
    """
    ALTER TABLE charging_points ADD COLUMN record_key TEXT NOT NULL DEFAULT '';
    CREATE TABLE driver_credentials (
        driver_id   TEXT PRIMARY KEY,
        root_key    TEXT NOT NULL,
        enrolled_at REAL NOT NULL,
        enrolled_by TEXT NOT NULL,
        revoked_at  REAL
    );
    """,
    # 7: which consumed record ended a session (its ticket is relayed again when that
    # very record is read again after a crash)
    """
    ALTER TABLE sessions ADD COLUMN ended_by TEXT NOT NULL DEFAULT '';
    """,
    # 8: the outbox: records written in the transaction of the change they tell
    # (a ticket with its session's end), deleted once the broker confirmed them
    """
    CREATE TABLE outbox (
        record_id  INTEGER PRIMARY KEY AUTOINCREMENT,
        topic      TEXT NOT NULL,
        key        TEXT NOT NULL,
        value      BLOB NOT NULL,
        created_at REAL NOT NULL
    );
    """,
]

_SESSION_COLUMNS = (
    "session_id, cp_id, driver_id, origin, status, request_id, authorized_at, started_at, "
    "ended_at, kwh, eur, price, last_seq, elapsed_s, outcome, reason, max_kwh, max_eur, "
    "max_minutes, ended_by"
)


class Database:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        # Autocommit mode; transactions are explicit (BEGIN ... COMMIT) in transaction().
        self._conn = sqlite3.connect(self.path, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        # Waits for a lock block the event loop: short, and the caller retries later.
        self._conn.execute("PRAGMA busy_timeout=250")
        self._depth = 0

    # --- lifecycle -------------------------------------------------------------

    def migrate(self) -> int:
        """Apply the pending migrations; returns the schema version."""
        self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = self.version()
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                for statement in _statements(script):
                    self._conn.execute(statement)
                self._conn.execute("DELETE FROM schema_version")
                self._conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
        return self.version()

    def version(self) -> int:
        row = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def ping(self) -> bool:
        try:
            self._conn.execute("SELECT 1").fetchone()
        except sqlite3.Error:
            return False
        return True

    def close(self) -> None:
        self._conn.close()

    def size_bytes(self) -> int:
        """The database's size on disk, its write-ahead log included."""
        total = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                total += os.stat(f"{self.path}{suffix}").st_size
        return total

    def prune(self, *, requests_before: float, sessions_before: float | None) -> int:
        """Delete request ids answered before ``requests_before`` and, unless
        ``sessions_before`` is None, sessions ended and drivers last seen before it."""
        with self.transaction():
            deleted = self._conn.execute(
                "DELETE FROM processed_requests WHERE processed_at < ?", (requests_before,)
            ).rowcount
            if sessions_before is not None:
                deleted += self._conn.execute(
                    "DELETE FROM sessions WHERE status = 'ended' AND ended_at < ?",
                    (sessions_before,),
                ).rowcount
                deleted += self._conn.execute(
                    "DELETE FROM drivers WHERE last_seen < ?", (sessions_before,)
                ).rowcount
        return deleted

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction; nested uses join the outer one."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._conn.execute("COMMIT")
        finally:
            self._depth = 0

    # --- charging points ---------------------------------------------------------

    def load_cps(self) -> list[CpRow]:
        rows = self._conn.execute(
            "SELECT cp_id, location, price, out_of_service, stored_key, registered_at, last_seen, "
            "record_key FROM charging_points ORDER BY cp_id"
        ).fetchall()
        return [
            CpRow(
                cp_id=r["cp_id"],
                location=r["location"],
                price=r["price"],
                out_of_service=bool(r["out_of_service"]),
                stored_key=r["stored_key"],
                registered_at=r["registered_at"],
                last_seen=r["last_seen"],
                record_key=r["record_key"],
            )
            for r in rows
        ]

    def insert_cp(self, cp: CpRow) -> None:
        self._conn.execute(
            "INSERT INTO charging_points "
            "(cp_id, location, price, out_of_service, stored_key, registered_at, last_seen, "
            "record_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cp.cp_id,
                cp.location,
                cp.price,
                int(cp.out_of_service),
                cp.stored_key,
                cp.registered_at,
                cp.last_seen,
                cp.record_key,
            ),
        )

    def set_record_key(self, cp_id: str, record_key: str) -> None:
        self._conn.execute(
            "UPDATE charging_points SET record_key = ? WHERE cp_id = ?", (record_key, cp_id)
        )

    def update_credentials(self, cp_id: str, location: str, stored_key: str) -> None:
        self._conn.execute(
            "UPDATE charging_points SET location = ?, stored_key = ? WHERE cp_id = ?",
            (location, stored_key, cp_id),
        )

    def reset_credentials(self, cp_id: str) -> None:
        """Forget the CP's keys: only the registration token can enroll it again, and
        its Kafka records are refused until then."""
        self._conn.execute(
            "UPDATE charging_points SET stored_key = '', record_key = '' WHERE cp_id = ?", (cp_id,)
        )

    def set_out_of_service(self, cp_ids: Iterable[str], out_of_service: bool) -> None:
        with self.transaction():
            self._conn.executemany(
                "UPDATE charging_points SET out_of_service = ? WHERE cp_id = ?",
                [(int(out_of_service), cp_id) for cp_id in cp_ids],
            )

    def set_price(self, cp_id: str, price: float) -> None:
        self._conn.execute("UPDATE charging_points SET price = ? WHERE cp_id = ?", (price, cp_id))

    def flush_last_seen(self, seen: Iterable[tuple[str, float]]) -> None:
        with self.transaction():
            self._conn.executemany(
                "UPDATE charging_points SET last_seen = ? WHERE cp_id = ?",
                [(ts, cp_id) for cp_id, ts in seen],
            )

    # --- driver credentials -------------------------------------------------------

    def enroll_driver(self, driver_id: str, root_key: str, now: float, by: str) -> bool:
        """Store a driver's root key; False (nothing changed) if it is enrolled already."""
        cursor = self._conn.execute(
            "INSERT INTO driver_credentials (driver_id, root_key, enrolled_at, enrolled_by) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (driver_id) DO UPDATE SET "
            "root_key = excluded.root_key, enrolled_at = excluded.enrolled_at, "
            "enrolled_by = excluded.enrolled_by, revoked_at = NULL "
            "WHERE driver_credentials.revoked_at IS NOT NULL",
            (driver_id, root_key, now, by),
        )
        return cursor.rowcount == 1

    def revoke_driver(self, driver_id: str, now: float) -> bool:
        cursor = self._conn.execute(
            "UPDATE driver_credentials SET revoked_at = ? "
            "WHERE driver_id = ? AND revoked_at IS NULL",
            (now, driver_id),
        )
        return cursor.rowcount == 1

    def driver_key(self, driver_id: str) -> str | None:
        """The root key of an enrolled (not revoked) driver."""
        row = self._conn.execute(
            "SELECT root_key FROM driver_credentials WHERE driver_id = ? AND revoked_at IS NULL",
            (driver_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    def list_drivers(self) -> list[dict[str, object]]:
        rows = self._conn.execute(
            "SELECT driver_id, enrolled_at, enrolled_by, revoked_at FROM driver_credentials "
            "ORDER BY driver_id"
        ).fetchall()
        return [dict(r) for r in rows]

    # --- drivers and processed requests -----------------------------------------

    def touch_driver(self, driver_id: str, now: float) -> None:
        self._conn.execute(
            "INSERT INTO drivers (driver_id, first_seen, last_seen) VALUES (?, ?, ?) "
            "ON CONFLICT (driver_id) DO UPDATE SET last_seen = excluded.last_seen",
            (driver_id, now, now),
        )

    def attach_token(self, driver_id: str, id_token: str, now: float) -> None:
        """Attach an idToken to a driver (moving it from any other driver)."""
        with self.transaction():
            self.touch_driver(driver_id, now)
            self._conn.execute(
                "INSERT INTO driver_tokens (token_hash, driver_id, added_at) VALUES (?, ?, ?) "
                "ON CONFLICT (token_hash) DO UPDATE SET driver_id = excluded.driver_id, "
                "added_at = excluded.added_at",
                (_token_hash(id_token), driver_id, now),
            )

    def driver_of_token(self, id_token: str) -> str | None:
        row = self._conn.execute(
            "SELECT driver_id FROM driver_tokens WHERE token_hash = ?", (_token_hash(id_token),)
        ).fetchone()
        return None if row is None else str(row["driver_id"])

    def processed(self, request_id: str) -> tuple[bool, str | None]:
        """(seen before, the stored response JSON if any)."""
        row = self._conn.execute(
            "SELECT response FROM processed_requests WHERE request_id = ?", (request_id,)
        ).fetchone()
        return (False, None) if row is None else (True, row["response"])

    def mark_processed(self, request_id: str, kind: str, response: str | None, now: float) -> None:
        self._conn.execute(
            "INSERT OR IGNORE INTO processed_requests (request_id, kind, response, processed_at) "
            "VALUES (?, ?, ?, ?)",
            (request_id, kind, response, now),
        )

    # --- the outbox -----------------------------------------------------------------

    def keep_records(self, records: Iterable[KeptRecord], now: float) -> list[KeptRecord]:
        """Store records to publish (in the caller's transaction); returns them numbered."""
        kept = []
        for record in records:
            cursor = self._conn.execute(
                "INSERT INTO outbox (topic, key, value, created_at) VALUES (?, ?, ?, ?)",
                (record.topic, record.key, record.value, now),
            )
            assert cursor.lastrowid is not None
            kept.append(dataclasses.replace(record, record_id=cursor.lastrowid))
        return kept

    def kept_records(self) -> list[KeptRecord]:
        """Every record not yet confirmed by the broker, oldest first."""
        rows = self._conn.execute(
            "SELECT record_id, topic, key, value FROM outbox ORDER BY record_id"
        ).fetchall()
        return [KeptRecord(r["topic"], r["key"], bytes(r["value"]), r["record_id"]) for r in rows]

    def forget_records(self, record_ids: Iterable[int]) -> None:
        """Delete the records the broker confirmed."""
        with self.transaction():
            self._conn.executemany(
                "DELETE FROM outbox WHERE record_id = ?", [(i,) for i in record_ids]
            )

    def count_kept_records(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    # --- sessions -----------------------------------------------------------------

    def save_session(self, s: SessionRecord) -> None:
        """Insert or replace the whole session row (decisions, starts, tickets)."""
        self._conn.execute(
            f"INSERT OR REPLACE INTO sessions ({_SESSION_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.session_id,
                s.cp_id,
                s.driver_id,
                s.origin.value,
                s.status.value,
                s.request_id,
                s.authorized_at,
                s.started_at,
                s.ended_at,
                s.kwh,
                s.eur,
                s.price,
                s.last_seq,
                s.elapsed_s,
                s.outcome.value if s.outcome else None,
                s.reason,
                s.max_kwh,
                s.max_eur,
                s.max_minutes,
                s.ended_by,
            ),
        )

    def flush_progress(self, sessions: Iterable[SessionRecord]) -> None:
        """Telemetry progress of running sessions, batched (never touches ended ones)."""
        with self.transaction():
            self._conn.executemany(
                "UPDATE sessions SET kwh = ?, eur = ?, last_seq = ?, elapsed_s = ? "
                "WHERE session_id = ? AND status != 'ended' AND last_seq < ?",
                [
                    (s.kwh, s.eur, s.last_seq, s.elapsed_s, s.session_id, s.last_seq)
                    for s in sessions
                ],
            )

    def open_sessions(self) -> list[SessionRecord]:
        rows = self._conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE status != 'ended' "
            "ORDER BY authorized_at"
        ).fetchall()
        return [_session(r) for r in rows]

    def get_session(self, session_id: str) -> SessionRecord | None:
        row = self._conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE session_id = ?", (session_id,)
        ).fetchone()
        return None if row is None else _session(row)

    def list_sessions(
        self,
        *,
        cp_id: str | None = None,
        driver_id: str | None = None,
        limit: int = 100,
        where: SessionFilter | None = None,
        offset: int = 0,
    ) -> list[SessionRecord]:
        """Sessions newest first; ``where`` narrows them (``cp_id``/``driver_id`` are its
        shorthand)."""
        found = where or SessionFilter(cp_id=cp_id, driver_id=driver_id)
        clause, params = found.sql()
        rows = self._conn.execute(
            f"SELECT {_SESSION_COLUMNS} FROM sessions {clause}"
            "ORDER BY authorized_at DESC, session_id DESC LIMIT ? OFFSET ?",
            (*params, limit, offset),
        ).fetchall()
        return [_session(r) for r in rows]

    def count_sessions(self, where: SessionFilter) -> int:
        clause, params = where.sql()
        row = self._conn.execute(f"SELECT COUNT(*) FROM sessions {clause}", params).fetchone()
        return int(row[0])

    def totals(self, where: SessionFilter) -> SessionTotals:
        """How many sessions match, and their energy and money (as last flushed)."""
        clause, params = where.sql()
        row = self._conn.execute(
            f"SELECT COUNT(*), COALESCE(SUM(kwh), 0), COALESCE(SUM(eur), 0) FROM sessions {clause}",
            params,
        ).fetchone()
        return SessionTotals(sessions=int(row[0]), kwh=float(row[1]), eur=float(row[2]))


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Which sessions a query wants; every field left None matches everything.

    ``outcome`` is an ``Outcome`` value, or ``"open"`` for sessions not ended yet;
    ``since``/``until`` bound ``authorized_at`` (epoch seconds, until exclusive).
    """

    cp_id: str | None = None
    driver_id: str | None = None
    outcome: str | None = None
    since: float | None = None
    until: float | None = None

    def sql(self) -> tuple[str, tuple[Any, ...]]:
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("cp_id", self.cp_id), ("driver_id", self.driver_id)):
            if value:
                where.append(f"{column} = ?")
                params.append(value)
        if self.outcome == OPEN_SESSIONS:
            where.append("status != 'ended'")
        elif self.outcome:
            where.append("outcome = ?")
            params.append(self.outcome)
        if self.since is not None:
            where.append("authorized_at >= ?")
            params.append(self.since)
        if self.until is not None:
            where.append("authorized_at < ?")
            params.append(self.until)
        return (f"WHERE {' AND '.join(where)} " if where else ""), tuple(params)


@dataclass(frozen=True, slots=True)
class KeptRecord:
    """A record in the outbox: what the publisher sends, as it will be sent."""

    topic: str
    key: str
    value: bytes
    record_id: int = 0  # given when stored


@dataclass(frozen=True, slots=True)
class SessionTotals:
    sessions: int
    kwh: float
    eur: float


def _session(r: sqlite3.Row) -> SessionRecord:
    outcome: Any = r["outcome"]
    return SessionRecord(
        session_id=r["session_id"],
        cp_id=r["cp_id"],
        driver_id=r["driver_id"],
        origin=Origin(r["origin"]),
        status=SessionStatus(r["status"]),
        request_id=r["request_id"],
        authorized_at=r["authorized_at"],
        started_at=r["started_at"],
        ended_at=r["ended_at"],
        kwh=r["kwh"],
        eur=r["eur"],
        price=r["price"],
        last_seq=r["last_seq"],
        elapsed_s=r["elapsed_s"],
        outcome=Outcome(outcome) if outcome else None,
        reason=r["reason"],
        max_kwh=r["max_kwh"],
        max_eur=r["max_eur"],
        max_minutes=r["max_minutes"],
        ended_by=r["ended_by"],
    )


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


def _token_hash(id_token: str) -> str:
    """idTokens are case-insensitive in OCPP; only their hash is stored."""
    return hashlib.sha256(id_token.upper().encode()).hexdigest()
