"""Health checks: what the central hears when the engine is KO, silent, killed or back."""

from __future__ import annotations

from evproto.messages import ErrorReply, HealthRequest
from evproto.states import Health

# R2: the central must see BROKEN within 3 s of a KO or the engine dying; these
# tests run with the default interval and timeout (1 s) to show that deadline.
SPEC_DEADLINE = 3.0


def spec_settings(rig):
    return rig.settings(health_interval=1.0, health_timeout=1.0)


def last_health_is(rig, health: Health):
    return lambda: rig.central.last_health() is health


async def test_ko_reaches_the_central_within_3s_and_ok_again_after(rig):
    running = await rig.started_ok(spec_settings(rig))

    rig.engine.mode = rig.engine.Mode.KO
    await rig.eventually(last_health_is(rig, Health.KO), SPEC_DEADLINE, "Status KO")
    assert rig.central.statuses[-1].reason == "simulated fault"

    rig.engine.mode = rig.engine.Mode.OK
    await rig.eventually(last_health_is(rig, Health.OK), SPEC_DEADLINE, "Status OK")
    assert running.metric("evcharging_monitor_reports_total", health="KO") >= 1


async def test_a_silent_engine_is_unreachable_within_3s(rig):
    await rig.started_ok(spec_settings(rig))

    rig.engine.mode = rig.engine.Mode.SILENT
    await rig.eventually(
        last_health_is(rig, Health.UNREACHABLE), SPEC_DEADLINE, "Status UNREACHABLE"
    )
    assert "no answer from the engine" in rig.central.statuses[-1].reason


async def test_a_killed_engine_is_unreachable_within_3s_and_ok_when_it_returns(rig):
    running = await rig.started_ok(spec_settings(rig))

    await rig.engine.kill()
    await rig.eventually(
        last_health_is(rig, Health.UNREACHABLE), SPEC_DEADLINE, "Status UNREACHABLE"
    )
    assert running.metric("evcharging_monitor_engine_connected") == 0

    await rig.engine.start()  # on the same port
    await rig.eventually(last_health_is(rig, Health.OK), 5.0, "Status OK after the restart")
    assert running.metric("evcharging_monitor_engine_connected") == 1
    assert running.metric("evcharging_monitor_reconnect_attempts_total", peer="engine") >= 1


async def test_the_engine_is_asked_every_interval_with_a_new_seq(rig):
    running = await rig.start()
    await rig.eventually(lambda: len(rig.engine.notices(HealthRequest)) >= 5, what="5 checks")
    seqs = [m.seq for m in rig.engine.notices(HealthRequest)]
    assert seqs == sorted(set(seqs))
    assert running.metric("evcharging_monitor_health_check_latency_seconds_count") >= 4


async def test_answers_with_an_old_seq_are_skipped(rig):
    rig.engine.mode = rig.engine.Mode.STALE_FIRST  # a stale KO before every real OK
    await rig.start()
    await rig.eventually(lambda: len(rig.engine.notices(HealthRequest)) >= 5, what="5 checks")
    await rig.eventually(lambda: len(rig.central.statuses) >= 3, what="3 statuses")
    assert {s.health for s in rig.central.statuses} == {Health.OK}


async def test_a_heartbeat_status_goes_out_every_interval_while_nothing_changes(rig):
    await rig.start()
    await rig.eventually(lambda: len(rig.central.statuses) >= 5, what="5 heartbeats")
    assert {s.health for s in rig.central.statuses} == {Health.OK}


async def test_garbage_from_the_engine_is_counted_and_the_monitor_carries_on(rig, garbage):
    running = await rig.started_ok()
    checks_before = len(rig.engine.notices(HealthRequest))

    rig.engine.send_raw(garbage)

    def errors(kind: str) -> float:
        return running.metric("evcharging_monitor_protocol_errors_total", kind=kind)

    await rig.eventually(
        lambda: errors("malformed") and errors("unknown_type") and errors("invalid_field"),
        what="protocol errors counted",
    )
    assert errors("bad_lrc") == 1
    assert errors("stray_bytes") >= 1
    await rig.eventually(lambda: len(rig.engine.notices(ErrorReply)) == 3, what="3 ErrorReplies")
    await rig.eventually(lambda: len(rig.engine.notices(HealthRequest)) >= checks_before + 3)
    assert rig.central.last_health() is Health.OK
    assert not running.task.done()


async def test_an_engine_that_never_answers_from_the_start_is_reported_unreachable(
    rig, silent_server
):
    first = await rig.started_ok()  # registered: the secret is on disk
    await first.shutdown()
    mute = await silent_server(handshake=True)  # accepts, ACKs, never answers InfoRequest

    running = await rig.start(rig.settings(engine=mute.address))
    await rig.eventually(
        lambda: rig.central.logins[-1:] == ["authenticated"], what="login without the engine"
    )
    await rig.eventually(last_health_is(rig, Health.UNREACHABLE), what="Status UNREACHABLE")
    assert "EngineInfo" in rig.central.statuses[-1].reason
    assert not running.task.done()
