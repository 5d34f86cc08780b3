"""Logging in at the central: registration with the token, then the stored secret."""

from __future__ import annotations

import asyncio
import dataclasses
import stat

import pytest
from evproto import auth
from evproto.errors import AuthError, ConfigError
from evproto.messages import PriceUpdate
from evproto.states import Health


async def test_registration_stores_the_secret_and_the_next_start_uses_it(rig):
    first = await rig.start()
    await rig.eventually(lambda: rig.central.logins == ["registered"], what="registration")
    await rig.eventually(rig.secret_file.exists, what="secret file")
    assert stat.S_IMODE(rig.secret_file.stat().st_mode) == 0o600
    secret = rig.secret_file.read_text().strip()
    assert rig.central.stored_keys["CP-0"] == auth.stored_key(secret)
    await rig.eventually(lambda: rig.central.last_health() is Health.OK, what="Status OK")
    await first.shutdown()

    await rig.start(rig.settings(registration_token=""))
    await rig.eventually(lambda: rig.central.logins[-1:] == ["authenticated"], what="login")
    await rig.eventually(lambda: len(rig.central.links) == 2, what="second link")
    await rig.eventually(lambda: rig.central.last_health() is Health.OK, what="Status OK")
    assert rig.secret_file.read_text().strip() == secret  # no new registration


async def test_registration_proposes_the_engine_location_and_passes_the_price_on(rig):
    await rig.started_ok()
    await rig.eventually(lambda: rig.engine.notices(PriceUpdate), what="price at the engine")
    assert rig.engine.notices(PriceUpdate)[0] == PriceUpdate(cp_id="CP-0", price=rig.central.price)


async def test_a_cp_the_operator_reset_registers_again_with_the_token(rig):
    rig.state_dir.mkdir()
    old = auth.new_secret()
    rig.secret_file.write_text(old)
    rig.central.stored_keys["CP-0"] = ""  # evctl reset: the central forgot the key

    await rig.started_ok()
    assert rig.central.logins == ["registered"]
    secret = rig.secret_file.read_text().strip()
    assert secret != old and rig.central.stored_keys["CP-0"] == auth.stored_key(secret)


async def test_a_rejected_secret_of_a_known_cp_stops_and_names_the_reset(rig):
    """The token cannot re-key a known CP: the monitor tries once and stops (its pod
    restarts with back-off) until the operator resets the CP."""
    rig.state_dir.mkdir()
    rig.secret_file.write_text(auth.new_secret())
    rig.central.stored_keys["CP-0"] = auth.stored_key(auth.new_secret())  # another secret
    running = await rig.start(rig.settings())
    with pytest.raises(AuthError, match=r"already registered \(evctl reset CP-0\)$"):
        await asyncio.wait_for(running.task, 10)
    assert rig.central.logins == ["rejected", "rejected"]


async def test_a_rejected_secret_without_a_token_is_a_permanent_error(rig):
    rig.state_dir.mkdir()
    rig.secret_file.write_text(auth.new_secret())
    rig.central.stored_keys["CP-0"] = auth.stored_key(auth.new_secret())

    running = await rig.start(rig.settings(registration_token=""))
    with pytest.raises(AuthError, match="rejected the secret of CP-0"):
        await asyncio.wait_for(running.task, 10)
    assert rig.central.logins == ["rejected"]  # tried once, not again and again


async def test_a_wrong_registration_token_is_a_permanent_error(rig):
    running = await rig.start(rig.settings(registration_token="not-the-token"))
    with pytest.raises(AuthError, match="refused to register CP-0: bad registration token"):
        await asyncio.wait_for(running.task, 10)


async def test_an_unknown_cp_with_a_secret_but_no_token_is_a_permanent_error(rig):
    rig.state_dir.mkdir()
    rig.secret_file.write_text(auth.new_secret())  # the central forgot the CP

    running = await rig.start(rig.settings(registration_token=""))
    with pytest.raises(AuthError, match="does not know CP-0"):
        await asyncio.wait_for(running.task, 10)


async def test_no_secret_and_no_token_fails_at_start(rig):
    running = await rig.start(rig.settings(registration_token=""))
    with pytest.raises(ConfigError, match=r"no CP secret .* and no registration token"):
        await asyncio.wait_for(running.task, 10)
    assert rig.central.logins == []


async def test_an_unreadable_secret_file_is_a_configuration_error(rig):
    rig.state_dir.mkdir()
    rig.secret_file.write_text("this is not a secret\n")

    running = await rig.start()
    with pytest.raises(ConfigError, match="does not hold a CP secret"):
        await asyncio.wait_for(running.task, 10)


async def test_an_engine_of_another_cp_is_a_configuration_error(rig):
    rig.engine.info = dataclasses.replace(rig.engine.info, cp_id="CP-9")

    running = await rig.start()
    with pytest.raises(ConfigError, match="is CP-9, but this monitor is --cp-id CP-0"):
        await asyncio.wait_for(running.task, 10)
    assert rig.central.logins == []  # never registered as the wrong CP
