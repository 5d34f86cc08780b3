"""The central link: outages, back-off, re-authentication, pushes and bad input."""

from __future__ import annotations

import pytest
from evproto.messages import (
    CentralRestored,
    CentralUnreachable,
    Challenge,
    ErrorReply,
    HealthRequest,
    PriceUpdate,
)
from evproto.states import Health


async def test_a_killed_central_is_told_to_the_engine_and_rejoined_when_it_returns(rig):
    running = await rig.started_ok()
    await rig.central.kill()
    await rig.eventually(
        lambda: rig.engine.notices(CentralUnreachable), what="CentralUnreachable at the engine"
    )
    assert running.metric("evcharging_monitor_central_connected") == 0

    rig.engine.mode = rig.engine.Mode.KO  # meanwhile, the engine breaks
    heard_before = len(rig.central.statuses)
    await rig.central.start()  # on the same port, remembering the CP
    await rig.eventually(lambda: len(rig.central.statuses) > heard_before, what="Status again")
    assert rig.central.logins == ["registered", "authenticated"]
    await rig.eventually(lambda: rig.central.last_health() is Health.KO, what="KO reported")
    await rig.eventually(lambda: rig.engine.notices(CentralRestored), what="CentralRestored")
    assert running.metric("evcharging_monitor_central_connected") == 1
    assert running.metric("evcharging_monitor_reconnect_attempts_total", peer="central") >= 1

    notices = [
        type(m) for m in rig.engine.received if isinstance(m, CentralUnreachable | CentralRestored)
    ]
    assert notices == [CentralUnreachable, CentralRestored]


async def test_the_engine_is_told_when_the_central_cannot_be_reached_at_start(rig, silent_server):
    nobody = await silent_server(handshake=False)
    await nobody.kill()  # a port where nothing listens any more
    running = await rig.start(rig.settings(central=nobody.address))
    await rig.eventually(lambda: rig.engine.notices(CentralUnreachable), what="notice")
    await rig.eventually(
        lambda: running.metric("evcharging_monitor_reconnect_attempts_total", peer="central") >= 2,
        what="retries with back-off",
    )
    assert not running.task.done()


async def test_a_price_pushed_by_the_central_reaches_the_engine(rig):
    await rig.started_ok()
    await rig.central.push_price(0.55)
    await rig.eventually(
        lambda: PriceUpdate(cp_id="CP-0", price=0.55) in rig.engine.notices(PriceUpdate),
        what="forwarded price",
    )


async def test_a_price_for_another_cp_is_refused(rig):
    running = await rig.started_ok()
    await rig.central.push_price(0.99, cp_id="CP-5")
    await rig.eventually(lambda: any(isinstance(m, ErrorReply) for m in rig.central.received))
    assert PriceUpdate(cp_id="CP-0", price=0.99) not in rig.engine.notices(PriceUpdate)
    assert running.metric("evcharging_monitor_protocol_errors_total", kind="invalid_field") == 1


async def test_garbage_and_unexpected_messages_from_the_central_are_refused(rig, garbage):
    running = await rig.started_ok()
    await rig.central.link.send(Challenge(nonce="again", registered=True))
    rig.central.send_raw(garbage)

    await rig.eventually(
        lambda: len([m for m in rig.central.received if isinstance(m, ErrorReply)]) == 4,
        what="an ErrorReply for each bad message",
    )
    codes = [m.code for m in rig.central.received if isinstance(m, ErrorReply)]
    # a Challenge after login, not JSON, an unknown type, a type the monitor does not take
    assert codes == ["unknown_type", "malformed", "unknown_type", "unknown_type"]
    assert running.metric("evcharging_monitor_protocol_errors_total", kind="bad_lrc") == 1
    assert running.metric("evcharging_monitor_protocol_errors_total", kind="unexpected_message")
    heard = len(rig.central.statuses)
    await rig.eventually(lambda: len(rig.central.statuses) >= heard + 2, what="still reporting")
    assert len(rig.central.links) == 1  # the same link: nothing was dropped


@pytest.mark.parametrize("handshake", [False, True], ids=["no-ack-to-enq", "no-login-answer"])
async def test_a_central_that_never_answers_is_given_up_on_and_retried(
    rig, silent_server, handshake
):
    mute = await silent_server(handshake=handshake)
    running = await rig.start(rig.settings(central=mute.address))
    await rig.eventually(lambda: mute.accepted >= 2, 10.0, "a second attempt after the timeout")
    assert rig.engine.notices(CentralUnreachable)
    assert not running.task.done()


async def test_the_engine_is_still_checked_and_kept_informed_while_the_central_is_down(rig):
    await rig.started_ok()
    await rig.central.kill()
    await rig.eventually(lambda: rig.engine.notices(CentralUnreachable), what="first notice")
    checks = len(rig.engine.notices(HealthRequest))
    await rig.eventually(lambda: len(rig.engine.notices(HealthRequest)) >= checks + 3)

    await rig.engine.kill()  # a restarted engine knows nothing: tell it again
    await rig.engine.start()
    await rig.eventually(lambda: len(rig.engine.links) == 2, what="engine link again")
    await rig.eventually(lambda: len(rig.engine.notices(CentralUnreachable)) == 2)
    await rig.eventually(lambda: len(rig.engine.notices(PriceUpdate)) == 2, what="price again")


async def test_the_central_sets_the_heartbeat_interval_and_a_change_is_reported_at_once(rig):
    rig.central.status_interval = 30.0  # a large fleet's central: one heartbeat in 30 s
    await rig.started_ok()
    checks = len(rig.engine.notices(HealthRequest))
    await rig.eventually(
        lambda: len(rig.engine.notices(HealthRequest)) >= checks + 5,
        what="the engine still checked every --health-interval (0.2 s)",
    )
    assert [s.health for s in rig.central.statuses] == [Health.OK]  # no heartbeat due yet

    rig.engine.mode = rig.engine.Mode.KO
    await rig.eventually(lambda: rig.central.last_health() is Health.KO, what="KO at once")
    assert [s.health for s in rig.central.statuses] == [Health.OK, Health.KO]
