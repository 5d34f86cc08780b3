"""The chart in a kind cluster: supplies through driver pods, a fault, a central restart."""

from __future__ import annotations

import pytest
from evkind_cluster import Release, wait_for

pytestmark = [pytest.mark.kind, pytest.mark.e2e, pytest.mark.slow]


def test_helm_test_completes_a_supply(release: Release) -> None:
    done = release.helm("test", release.name, "--timeout", "5m", "--logs", timeout=330)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_driver_pod_completes_a_supply(release: Release) -> None:
    done = release.exec(
        f"{release.fullname}-driver-0", "evdriver", "request", "CP-0", "--max-kwh", "0.01",
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    sessions = release.api("/api/sessions?cp_id=CP-0&limit=1")
    assert isinstance(sessions, dict)
    (last,) = sessions["sessions"]
    assert (last["driver_id"], last["status"]) == (f"{release.fullname}-driver-0", "ended")


def test_an_engine_ko_shows_the_cp_broken_down(release: Release) -> None:
    pod = f"{release.fullname}-cp-1"
    ko = release.exec(pod, "evengine", "ctl", "ko", container="engine")
    assert ko.returncode == 0, ko.stdout + ko.stderr
    try:
        wait_for("CP-1 is BROKEN_DOWN", release.in_state("CP-1", "BROKEN_DOWN"), 15)
    finally:
        ok = release.exec(pod, "evengine", "ctl", "ok", container="engine")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wait_for("CP-1 is ACTIVE again", release.in_state("CP-1", "ACTIVE"), 15)


def test_the_ticket_arrives_although_the_central_pod_is_deleted_mid_supply(
    release: Release,
) -> None:
    # 0.15 kWh at 22 kW: about 25 s of supply, time enough to delete the central.
    driver = release.popen_exec(
        f"{release.fullname}-driver-0", "evdriver", "request", "CP-2", "--max-kwh", "0.15"
    )
    try:
        wait_for("CP-2 is SUPPLYING", release.in_state("CP-2", "SUPPLYING"), 60)
        deleted = release.kubectl("delete", "pod", f"{release.fullname}-central-0", "--wait=false")
        assert deleted.returncode == 0, deleted.stderr
        output, _ = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, output  # 0: the driver got its ticket
    wait_for("CP-2 is ACTIVE after the restart", release.in_state("CP-2", "ACTIVE"), 180)
    sessions = release.api("/api/sessions?cp_id=CP-2&limit=5")
    assert isinstance(sessions, dict)
    last = sessions["sessions"][0]
    assert (last["status"], last["outcome"]) == ("ended", "completed")
