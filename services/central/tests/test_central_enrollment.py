"""Self-enrollment keeps the driver's key and the request's answer in one transaction:
a failure between the two leaves neither, and the driver's retry still gets its key."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable

import pytest
from evcentral.app import Central
from evproto.kafka import Record
from evproto.messages import EnrollRequest, EnrollResponse
from evproto.proofs import EnrollmentKeyPair, driver_root_key
from evproto.topics import Topic

_FAIL_THE_MARK = """
CREATE TRIGGER fail_the_mark BEFORE INSERT ON processed_requests
BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END
"""


def record_of(msg: EnrollRequest) -> Record:
    return Record(Topic.SUPPLY_REQUESTS, 0, 0, msg.driver_id, int(msg.sent_at * 1000))


async def test_a_failure_before_the_answer_is_kept_leaves_no_key_and_the_retry_enrolls(
    central: Central, new_id: Callable[[str], str]
) -> None:
    driver_id = new_id("driver")
    pair = EnrollmentKeyPair()
    request = EnrollRequest(
        request_id=new_id("req"), driver_id=driver_id, public_key=pair.public, sent_at=time.time()
    )
    # The real database refuses the second write (as a full disk would); a second
    # connection installs the trigger, the central's own sees it at its next statement.
    with sqlite3.connect(central.db.path) as other:
        other.executescript(_FAIL_THE_MARK)
    with pytest.raises(sqlite3.IntegrityError, match="disk full"):
        await central.enrollment.on_enroll(request, record_of(request))
    assert central.db.driver_key(driver_id) is None
    assert central.keys.driver_key(driver_id) is None
    assert central.db.processed(request.request_id) == (False, None)

    with sqlite3.connect(central.db.path) as other:
        other.execute("DROP TRIGGER fail_the_mark")
    await central.enrollment.on_enroll(request, record_of(request))  # the record read again
    seen, stored = central.db.processed(request.request_id)
    assert seen and stored is not None
    answer = EnrollResponse.from_dict(json.loads(stored))
    assert answer.accepted, answer.reason
    root = driver_root_key(pair.open(answer))
    assert central.keys.driver_key(driver_id) == root
