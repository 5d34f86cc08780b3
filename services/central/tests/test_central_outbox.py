"""The central's transactional outbox on a real SQLite file: a record kept with a
change is stored in its transaction, sent once it committed, deleted once the broker
confirmed it, and sent again by the next start when a crash came first."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from evcentral.db import Database
from evcentral.keyring import Keyring
from evcentral.outbox import Outbox
from evcentral.records import CpRow
from evcentral.registry import Registry
from evproto.errors import BrokerError
from evproto.messages import CpStateUpdate
from evproto.schema import decode_message
from evproto.states import CpState
from evproto.topics import Topic
from evstack.waiting import eventually


class HeldPublisher:
    """A publisher whose broker answers only when the test says so."""

    def __init__(self) -> None:
        self.sent: list[tuple[Topic, str, bytes, asyncio.Future[None]]] = []

    def publish_encoded(self, topic: Topic, key: str, value: bytes) -> asyncio.Future[None]:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sent.append((topic, key, value, done))
        return done

    def confirm_all(self) -> None:
        for *_sent, done in self.sent:
            if not done.done():
                done.set_result(None)

    def cp_ids(self) -> list[str]:
        return [_cp_id(decode_message(value)) for _t, _k, value, _d in self.sent]


def _cp_id(msg: object) -> str:
    assert isinstance(msg, CpStateUpdate)
    return msg.cp_id


def _update(cp_id: str) -> CpStateUpdate:
    return CpStateUpdate(cp_id=cp_id, state=CpState.ACTIVE, location="", price=0.3, sent_at=1.0)


class Central:
    """What a central process holds of the outbox: its database and the outbox on it."""

    def __init__(self, path: Path) -> None:
        self.db = Database(path)
        self.db.migrate()
        self.wire = HeldPublisher()
        self.outbox = Outbox(self.wire, Keyring(self.db, Registry()), self.db)  # type: ignore[arg-type]

    def keep(self, *cp_ids: str) -> None:
        with self.outbox.kept():
            self.db.insert_cp(CpRow(cp_ids[0], "", 0.3, False, "", 0.0))  # the change
            for cp_id in cp_ids:
                self.outbox.publish(Topic.CP_STATE, cp_id, _update(cp_id))


@pytest.fixture
def central(tmp_path: Path) -> Central:
    return Central(tmp_path / "central.db")


async def _callbacks() -> None:
    await asyncio.sleep(0)  # futures run their done callbacks on the next turn


async def _all_deleted(central: Central) -> None:
    await eventually(lambda: central.db.kept_records() == [], 5, "the confirmed rows deleted")


async def test_kept_records_are_stored_with_the_change_and_sent_after_the_commit(
    central: Central,
) -> None:
    central.keep("CP-1", "CP-2")
    assert central.wire.cp_ids() == ["CP-1", "CP-2"]
    assert [r.key for r in central.db.kept_records()] == ["CP-1", "CP-2"]
    assert [cp.cp_id for cp in central.db.load_cps()] == ["CP-1"]
    assert central.outbox.kept_records == 2


async def test_a_confirmed_record_is_deleted_and_never_sent_again(
    central: Central, tmp_path: Path
) -> None:
    central.keep("CP-1")
    central.wire.confirm_all()
    await _all_deleted(central)
    assert central.outbox.kept_records == 0
    assert central.outbox.send_kept() == 0
    again = Central(tmp_path / "central.db")
    assert again.outbox.send_kept() == 0


async def test_a_record_not_confirmed_before_a_crash_is_sent_by_the_next_start(
    central: Central, tmp_path: Path
) -> None:
    central.keep("CP-1")
    central.wire.confirm_all()
    central.keep("CP-2")  # the broker never confirms it: the process is killed
    # before CP-1's confirmation was handled either: both come back, CP-1 as a copy
    restarted = Central(tmp_path / "central.db")
    assert restarted.outbox.send_kept() == 2
    assert restarted.wire.cp_ids() == ["CP-1", "CP-2"]
    assert restarted.outbox.kept_records == 2
    restarted.wire.confirm_all()
    await _all_deleted(restarted)
    assert restarted.outbox.kept_records == 0
    assert Central(tmp_path / "central.db").db.kept_records() == []


async def test_a_failed_change_keeps_and_sends_nothing(central: Central) -> None:
    central.keep("CP-1")
    with pytest.raises(sqlite3.IntegrityError):
        central.keep("CP-1", "CP-3")  # CP-1 exists: the change fails, its records too
    assert central.wire.cp_ids() == ["CP-1"]
    assert [r.key for r in central.db.kept_records()] == ["CP-1"]


async def test_records_on_their_way_are_not_sent_twice(central: Central) -> None:
    central.keep("CP-1")
    assert central.outbox.send_kept() == 0  # topics recreated meanwhile: still in flight
    assert central.wire.cp_ids() == ["CP-1"]


async def test_a_refused_delivery_stays_kept_for_the_next_round(central: Central) -> None:
    central.keep("CP-1")
    [(*_sent, done)] = central.wire.sent
    done.set_exception(BrokerError("MSG_SIZE_TOO_LARGE"))
    await _callbacks()
    assert central.outbox.failures == 1
    assert central.outbox.forget_confirmed() == 0
    assert central.outbox.send_kept() == 1
    assert central.wire.cp_ids() == ["CP-1", "CP-1"]


def test_kept_records_need_a_transaction_of_their_own(central: Central) -> None:
    with central.db.transaction(), pytest.raises(RuntimeError), central.outbox.kept():
        pass


async def test_a_failed_delete_is_tried_again(central: Central, monkeypatch: Any) -> None:
    central.keep("CP-1")
    attempts: list[object] = []

    def locked(ids: object) -> None:
        attempts.append(ids)
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as patched:
        patched.setattr(central.db, "forget_records", locked)
        central.wire.confirm_all()
        await eventually(lambda: attempts, 5, "a delete tried")
        with pytest.raises(sqlite3.OperationalError):  # the flush's try, still locked
            central.outbox.forget_confirmed()
    assert central.outbox.forget_confirmed() == 1  # the next flush
    assert central.db.kept_records() == []
