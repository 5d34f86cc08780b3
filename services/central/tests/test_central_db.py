"""The SQLite store: migrations on a fresh and an existing database, and what it keeps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from evcentral.db import MIGRATIONS, Database
from evcentral.records import CpRow, SessionRecord, SessionStatus
from evproto.messages import Origin, Outcome


def cp_row(cp_id: str = "CP-1") -> CpRow:
    return CpRow(
        cp_id=cp_id,
        location="Bay 1",
        price=0.3,
        out_of_service=False,
        stored_key="ab" * 32,
        registered_at=100.0,
    )


def session(session_id: str = "s1", **kw: object) -> SessionRecord:
    fields: dict[str, object] = {
        "session_id": session_id,
        "cp_id": "CP-1",
        "driver_id": "D1",
        "origin": Origin.DRIVER,
        "status": SessionStatus.AUTHORIZED,
        "authorized_at": 200.0,
        "price": 0.3,
    }
    fields.update(kw)
    return SessionRecord(**fields)  # type: ignore[arg-type]


def test_a_fresh_database_gets_every_migration_in_wal_mode(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    assert db.migrate() == len(MIGRATIONS)
    assert db.load_cps() == []
    db.close()
    with sqlite3.connect(tmp_path / "c.db") as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"charging_points", "drivers", "sessions", "processed_requests"} <= tables
    assert "schema_version" in tables


def test_an_existing_database_is_upgraded_and_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as raw:  # a database written by the first release
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        raw.executescript(MIGRATIONS[0])
        raw.execute("INSERT INTO schema_version VALUES (1)")
        raw.execute(
            "INSERT INTO charging_points VALUES ('CP-7', 'Depot', 0.42, 1, 'key', 1.0, NULL)"
        )
    db = Database(path)
    assert db.version() == 1
    assert db.migrate() == len(MIGRATIONS)
    [cp] = db.load_cps()
    assert (cp.cp_id, cp.location, cp.price, cp.out_of_service) == ("CP-7", "Depot", 0.42, True)
    assert db.migrate() == len(MIGRATIONS)  # a second start changes nothing
    indexes = {r[0] for r in db._conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "sessions_open" in indexes


def test_charging_points_round_trip(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    db.insert_cp(cp_row())
    db.set_price("CP-1", 0.55)
    db.set_out_of_service(["CP-1"], True)
    db.update_credentials("CP-1", "Bay 2", "cd" * 32)
    db.flush_last_seen([("CP-1", 123.0)])
    [cp] = db.load_cps()
    assert (cp.price, cp.out_of_service, cp.location, cp.last_seen) == (0.55, True, "Bay 2", 123.0)
    assert cp.stored_key == "cd" * 32


def test_sessions_are_listed_newest_first_and_filtered(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    db.save_session(session("old", authorized_at=1.0))
    db.save_session(session("new", authorized_at=2.0, driver_id="D2", cp_id="CP-2"))
    assert [s.session_id for s in db.list_sessions()] == ["new", "old"]
    assert [s.session_id for s in db.list_sessions(driver_id="D1")] == ["old"]
    assert [s.session_id for s in db.list_sessions(cp_id="CP-2", limit=1)] == ["new"]
    assert {s.session_id for s in db.open_sessions()} == {"old", "new"}


def test_progress_flush_never_regresses_or_touches_ended_sessions(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    running = session("run", status=SessionStatus.SUPPLYING, last_seq=5, kwh=1.0)
    ended = session(
        "end", status=SessionStatus.ENDED, last_seq=9, kwh=2.0, outcome=Outcome.COMPLETED
    )
    db.save_session(running)
    db.save_session(ended)
    db.flush_progress(
        [
            session("run", status=SessionStatus.SUPPLYING, last_seq=7, kwh=1.5),
            session("end", status=SessionStatus.SUPPLYING, last_seq=12, kwh=9.0),
        ]
    )
    db.flush_progress([session("run", status=SessionStatus.SUPPLYING, last_seq=6, kwh=1.2)])
    got = {s.session_id: s for s in db.list_sessions()}
    assert (got["run"].last_seq, got["run"].kwh) == (7, 1.5)
    assert (got["end"].last_seq, got["end"].kwh, got["end"].outcome) == (9, 2.0, Outcome.COMPLETED)
    assert [s.session_id for s in db.open_sessions()] == ["run"]


def test_processed_requests_remember_the_response(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    assert db.processed("r1") == (False, None)
    with db.transaction():
        db.mark_processed("r1", "supply_request", '{"x": 1}', 5.0)
        db.mark_processed("r2", "supply_stop", None, 5.0)
    assert db.processed("r1") == (True, '{"x": 1}')
    assert db.processed("r2") == (True, None)


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    try:
        with db.transaction():
            db.insert_cp(cp_row("CP-1"))
            db.insert_cp(cp_row("CP-1"))  # duplicate key
    except sqlite3.IntegrityError:
        pass
    assert db.load_cps() == []


def test_commits_are_durable(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    assert db._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_prune_forgets_old_request_ids_ended_sessions_and_idle_drivers(tmp_path: Path) -> None:
    db = Database(tmp_path / "c.db")
    db.migrate()
    db.mark_processed("old", "supply_request", None, 100.0)
    db.mark_processed("new", "supply_request", None, 900.0)
    db.save_session(session("ended-old", status=SessionStatus.ENDED, ended_at=150.0))
    db.save_session(session("ended-new", status=SessionStatus.ENDED, ended_at=950.0))
    db.save_session(session("open-old", status=SessionStatus.SUPPLYING))
    db.touch_driver("D-old", 100.0)
    db.touch_driver("D-new", 900.0)
    size = db.size_bytes()
    assert size > 0

    assert db.prune(requests_before=500.0, sessions_before=None) == 1
    assert db.processed("old") == (False, None) and db.processed("new")[0]
    assert db.get_session("ended-old") is not None  # sessions kept forever: retention 0

    assert db.prune(requests_before=500.0, sessions_before=500.0) == 2
    assert db.get_session("ended-old") is None
    assert db.get_session("ended-new") is not None
    assert db.get_session("open-old") is not None  # open sessions are never pruned
    drivers = [r[0] for r in db._conn.execute("SELECT driver_id FROM drivers")]
    assert drivers == ["D-new"]
