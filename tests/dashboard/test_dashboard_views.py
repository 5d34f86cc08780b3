"""Every view of the dashboard as an operator uses it: sign-in, a CP's detail and price,
STOP/RESUME all behind a confirmation, sessions with CSV, the live log; each one
passes the axe-core check."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from dash_fleet import FLEET_SIZE, FleetSystem, seeded_cp_id
from dash_page import assert_accessible, screenshot, sign_in
from evstack.waiting import wait_until

pytestmark = [pytest.mark.e2e]  # real processes and a browser


def test_sign_in_refuses_a_wrong_token_and_sign_out_forgets_it(
    page: Any, fleet: FleetSystem
) -> None:
    assert_accessible(page, "the sign-in form")
    screenshot(page, "sign-in")
    page.get_by_label("Access token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("alert").get_by_text("Sign-in failed").wait_for()
    assert page.locator("#app").is_hidden()
    sign_in(page, fleet.operator_token)
    assert page.get_by_text("Signed in as operator").is_visible()
    page.reload()  # kept for the tab
    page.get_by_text("Signed in as operator").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Access token").wait_for()
    assert page.evaluate("() => sessionStorage.length") == 0
    page.reload()
    page.get_by_label("Access token").wait_for()
    assert page.locator("#app").is_hidden()


def test_keyboard_only_sign_in_and_stop_a_cp(page: Any, fleet: FleetSystem) -> None:
    page.keyboard.type(fleet.operator_token)  # the token field has the focus
    page.keyboard.press("Enter")
    page.get_by_text("Signed in as operator").wait_for()
    page.get_by_label("Search id or location").focus()
    page.keyboard.type("CP-0")
    page.locator('tr[data-cp-id="CP-0"][data-state="ACTIVE"]').wait_for()
    stop = page.get_by_role("button", name="Stop CP-0", exact=True)
    for _ in range(40):  # Tab through the page to the row's Stop button
        page.keyboard.press("Tab")
        if stop.evaluate("b => b === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached the Stop CP-0 button")
    page.keyboard.press("Enter")
    page.locator('tr[data-cp-id="CP-0"][data-state="STOPPED"]').wait_for()
    screenshot(page, "stop-cp")
    page.keyboard.press("Tab")  # to Resume CP-0
    page.keyboard.press("Enter")
    page.locator('tr[data-cp-id="CP-0"][data-state="ACTIVE"]').wait_for()


def test_cp_detail_shows_history_and_changes_the_price(page: Any, fleet: FleetSystem) -> None:
    sign_in(page, fleet.operator_token)
    page.get_by_label("Search id or location").fill("CP-0")
    page.get_by_role("link", name="CP-0", exact=True).click()
    page.get_by_role("heading", name="Charging point CP-0").wait_for()
    facts = page.locator("#cp-facts")
    facts.get_by_text("Active").wait_for()
    assert "Harbour 0" in facts.inner_text()
    history = page.locator("#cp-history")
    history.get_by_text("Disconnected").first.wait_for()  # then Active: the registration
    assert "Active" in history.inner_text()
    price = page.get_by_label("Price of CP-0 (€/kWh)")
    price.fill("0.47")
    page.get_by_role("button", name="Set price of CP-0").click()
    page.get_by_text("Price of CP-0 is now 0.47 €/kWh").wait_for()
    assert fleet.cp("CP-0")["price"] == 0.47
    facts.get_by_text("0.47 €/kWh").wait_for()
    assert page.get_by_role("button", name="Stop CP-0").is_enabled()
    assert_accessible(page, "the CP detail view")
    screenshot(page, "cp-detail")

    # a seeded CP with sessions: its last sessions are listed
    page.goto(f"{fleet.url}#/cp/{seeded_cp_id(1)}")
    page.get_by_role("heading", name=f"Charging point {seeded_cp_id(1)}").wait_for()
    page.locator("#cp-sessions tr").first.wait_for()
    assert page.locator("#cp-sessions tr").count() == 6  # sessions 0, 40, …, 200
    assert "D-01" in page.locator("#cp-sessions").inner_text()


def test_cp_detail_follows_a_supply_live_to_its_ticket(page: Any, fleet: FleetSystem) -> None:
    sign_in(page, fleet.operator_token)
    page.goto(f"{fleet.url}#/cp/CP-0")
    page.get_by_role("heading", name="Charging point CP-0").wait_for()
    driver = fleet.start_driver("D-LIVE", "request", "CP-0", "--max-kwh", "0.03")
    current = page.locator("#cp-session")
    page.locator("#cp-facts").get_by_text("Supplying").wait_for(timeout=30_000)
    supplying = r"/D-LIVE · 0\.0\d[1-9] kWh/"  # some energy counted already
    page.wait_for_function(
        f"() => {supplying}.test(document.getElementById('cp-session').textContent)"
    )
    first = current.inner_text()
    page.wait_for_function(
        "(before) => document.getElementById('cp-session').textContent !== before", arg=first
    )  # the energy grows as telemetry arrives, without a reload
    assert "€" in current.inner_text()
    screenshot(page, "cp-supplying")
    wait_until(lambda: not driver.alive, 60, "the driver's ticket (0.03 kWh)")
    assert driver.proc is not None and driver.proc.returncode == 0
    last = page.locator("#cp-sessions tr").first
    last.get_by_text("completed").wait_for()  # reloaded when the CP became ACTIVE again
    assert "D-LIVE" in last.inner_text()
    current.get_by_text("None.").wait_for()


def test_stop_all_asks_first_and_resume_all_brings_the_fleet_back(
    page: Any, fleet: FleetSystem
) -> None:
    sign_in(page, fleet.operator_token)
    page.get_by_text(f"({FLEET_SIZE + 1:,} in all)").wait_for()
    page.get_by_role("button", name="STOP all").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"Stop all {FLEET_SIZE + 1:,} charging points?").wait_for()
    assert_accessible(page, "the STOP all confirmation")
    screenshot(page, "stop-all-confirm")
    dialog.get_by_role("button", name="Cancel").click()
    assert dialog.is_hidden()
    assert fleet.cp("CP-0")["state"] == "ACTIVE"  # nothing was sent

    page.get_by_role("button", name="STOP all").click()
    dialog.get_by_role("button", name="Stop all charging points").click()
    page.get_by_text(f"Sent to {FLEET_SIZE + 1} charging points").wait_for()
    page.locator('tr[data-cp-id="CP-0"][data-state="STOPPED"]').wait_for()
    assert fleet.cp(seeded_cp_id(5))["state"] == "DISCONNECTED"  # state says connected-ness

    page.get_by_role("button", name="RESUME all").click()
    dialog.get_by_text(f"Resume all {FLEET_SIZE + 1:,} charging points?").wait_for()
    page.keyboard.press("Escape")  # Escape cancels too
    assert fleet.cp("CP-0")["state"] == "STOPPED"
    page.get_by_role("button", name="RESUME all").click()
    dialog.get_by_role("button", name="Resume all charging points").click()
    page.locator('tr[data-cp-id="CP-0"][data-state="ACTIVE"]').wait_for()


def test_sessions_filter_page_and_export_csv(page: Any, fleet: FleetSystem) -> None:
    sign_in(page, fleet.operator_token)
    page.get_by_role("link", name="Sessions").click()
    total = fleet.get("/api/sessions?limit=1")["total"]  # 240 seeded, and any live ones
    page.get_by_text(f"of {total} sessions").wait_for()
    page.get_by_label("Driver", exact=True).fill("D-03")
    page.get_by_role("button", name="Show sessions").click()
    page.get_by_text("Showing 1–20 of 20 sessions").wait_for()
    rows = page.locator("#s-rows tr")
    assert rows.count() == 20 and "D-03" in rows.first.inner_text()
    assert_accessible(page, "the sessions view")
    screenshot(page, "sessions")
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename == "sessions.csv"
    table = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    assert len(table) == 20
    assert {(r["driver_id"], r["outcome"]) for r in table} == {("D-03", "completed")}
    page.get_by_label("Driver", exact=True).fill("")
    page.get_by_label("Outcome").select_option(label="Aborted")
    page.get_by_role("button", name="Show sessions").click()
    page.get_by_text("of 60 sessions").wait_for()  # every 4th session is aborted
    assert "engine reported KO" in rows.first.inner_text()

    # a driver in the list is a link to that driver's sessions
    page.get_by_role("link", name="Sessions of driver D-04").first.click()
    page.get_by_text("Showing 1–20 of 20 sessions").wait_for()
    assert page.get_by_label("Driver", exact=True).input_value() == "D-04"
    assert page.get_by_label("Outcome").input_value() == ""  # the other filters are reset

    # paging over everything
    page.get_by_label("Driver", exact=True).fill("")
    page.get_by_role("button", name="Show sessions").click()
    page.get_by_text(f"Page 1 of {-(-total // 50)}").wait_for()
    page.get_by_role("button", name="Next page").click()
    page.get_by_text(f"Showing 51–100 of {total} sessions").wait_for()


def test_the_live_log_filters_by_kind(page: Any, fleet: FleetSystem) -> None:
    sign_in(page, fleet.operator_token)
    page.get_by_role("link", name="Live log").click()
    log = page.locator("#log")
    log.get_by_text("CP-0 connected").first.wait_for()
    fleet.call("POST", "/api/cps/CP-0/stop")
    fleet.call("POST", "/api/cps/CP-0/resume")
    log.get_by_text("RESUME sent to CP-0").first.wait_for()
    page.get_by_label("Kind").select_option("directive")
    page.get_by_text("STOP sent to CP-0").first.wait_for()
    kinds = set(log.locator(".kind").all_inner_texts())
    assert kinds == {"directive"}
    assert_accessible(page, "the live log")
    screenshot(page, "live-log")


def test_a_viewer_watches_but_cannot_act(page: Any, fleet: FleetSystem) -> None:
    sign_in(page, fleet.stack.viewer_token)
    page.get_by_text("Signed in as viewer (read only)").wait_for()
    page.get_by_text(f"({FLEET_SIZE + 1:,} in all)").wait_for()
    assert page.get_by_role("button", name="STOP all").is_disabled()
    assert page.get_by_role("button", name="RESUME all").is_disabled()
    assert page.get_by_role("button", name="Stop CP-0", exact=True).is_disabled()
    assert_accessible(page, "the CP grid for a viewer")
    page.get_by_role("link", name="CP-0", exact=True).click()
    page.get_by_role("heading", name="Charging point CP-0").wait_for()
    assert page.get_by_role("button", name="Set price of CP-0").is_disabled()
    assert page.get_by_label("Price of CP-0 (€/kWh)").is_disabled()
    page.get_by_role("link", name="Sessions").click()
    page.locator("#s-rows tr").first.wait_for()
    assert page.get_by_label("Driver", exact=True).is_disabled()
    assert page.get_by_role("link", name="Drivers").count() == 0  # the operator's view
    drivers = set(page.locator("#s-rows tr td:nth-child(3)").all_inner_texts())
    assert drivers and not any(d.startswith("D-") for d in drivers), drivers  # pseudonyms


def test_drivers_are_enrolled_and_revoked_by_the_operator(page: Any, fleet: FleetSystem) -> None:
    sign_in(page, fleet.operator_token)
    page.get_by_role("link", name="Drivers").click()
    page.get_by_role("heading", name="Drivers").wait_for()
    page.get_by_label("Driver id to enroll").fill("D-NEW")
    page.get_by_role("button", name="Enroll").click()
    page.get_by_text("Secret of D-NEW (shown this once").wait_for()
    row = page.locator('tr[data-driver-id="D-NEW"]')
    row.wait_for()
    assert_accessible(page, "the drivers view")
    row.get_by_role("button", name="Revoke D-NEW").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Revoke D-NEW?").wait_for()
    dialog.get_by_role("button", name="Revoke D-NEW").click()
    page.get_by_text("D-NEW revoked").wait_for()
    page.locator('tr[data-driver-id="D-NEW"] button:disabled').wait_for()
    (stored,) = (d for d in fleet.get("/api/drivers")["drivers"] if d["driver_id"] == "D-NEW")
    assert stored["revoked_at"]


def test_a_cps_credentials_are_reset_after_a_confirmation(page: Any, fleet: FleetSystem) -> None:
    cp_id = seeded_cp_id(3)
    sign_in(page, fleet.operator_token)
    page.goto(f"{fleet.url}#/cp/{cp_id}")
    page.get_by_role("heading", name=f"Charging point {cp_id}").wait_for()
    page.get_by_role("button", name=f"Reset credentials of {cp_id}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text(f"Reset the credentials of {cp_id}?").wait_for()
    dialog.get_by_role("button", name=f"Reset {cp_id}").click()
    page.get_by_text(f"{cp_id} reset: it registers again").wait_for()
