"""Every component's /metrics on the running system: valid exposition, the metrics
an operator needs, and the supply sessions as the central billed them."""

from __future__ import annotations

import subprocess

import pytest
from obs_system import DRIVER_ID, STATION_ID, Endpoint, Observed, scrape
from obs_tools import prometheus_tool
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# What each component must export (issue #8), by sample name.
REQUIRED = {
    "central": {
        "evcharging_central_sessions_started_total",
        "evcharging_central_sessions_completed_total",
        "evcharging_central_sessions_aborted_total",
        "evcharging_central_session_duration_seconds_bucket",
        "evcharging_central_session_energy_kwh_bucket",
        "evcharging_central_energy_delivered_kwh_total",
        "evcharging_central_revenue_eur_total",
        "evcharging_central_authorization_latency_seconds_bucket",
        "evcharging_central_cps",
        "evcharging_central_cp_state",
        "evcharging_central_connected_monitors",
        "evcharging_central_frames_received_total",
        "evcharging_central_frames_sent_total",
        "evcharging_central_protocol_errors_total",
        "evcharging_central_kafka_messages_consumed_total",
        "evcharging_central_kafka_messages_produced_total",
        "evcharging_central_kafka_dead_letters_total",
        "evcharging_central_kafka_consumer_lag_messages",
        "evcharging_central_ready",
        "evcharging_central_event_loop_lag_seconds_bucket",
    },
    "engine": {
        "evcharging_engine_supplying",
        "evcharging_engine_power_kw",
        "evcharging_engine_session_energy_kwh",
        "evcharging_engine_telemetry_publish_failures_total",
    },
    "monitor": {
        "evcharging_monitor_health_check_latency_seconds_bucket",
        "evcharging_monitor_engine_connected",
        "evcharging_monitor_central_connected",
        "evcharging_monitor_reconnect_attempts_total",
    },
    "driver": {"evcharging_driver_requests_total", "evcharging_driver_outcomes_total"},
    "ocpp": {
        "evcharging_ocpp_stations_connected",
        "evcharging_ocpp_messages_total",
        "evcharging_ocpp_errors_total",
        "evcharging_ocpp_call_latency_seconds_bucket",
        "evcharging_ocpp_central_links",
    },
}
# Labelled series that exist (at 0) before anything happened: label -> values.
PREINITIALISED = {
    "evcharging_central_sessions_aborted_total": (
        "reason",
        {"fault", "operator_stop", "start_timeout", "engine_lost", "driver_cancel"},
    ),
    "evcharging_central_cps": (
        "state",
        {"ACTIVE", "SUPPLYING", "WAITING_FOR_SUPPLY", "STOPPED", "BROKEN_DOWN", "DISCONNECTED"},
    ),
    "evcharging_central_kafka_dead_letters_total": (
        "topic",
        {
            "ev.supply.requests",
            "ev.supply.responses",
            "ev.directives",
            "ev.supply.telemetry",
            "ev.driver.updates",
            "ev.cp.state",
            "ev.deadletter",
        },
    ),
    "evcharging_monitor_reconnect_attempts_total": ("peer", {"engine", "central"}),
    "evcharging_driver_outcomes_total": (
        "outcome",
        {"completed", "aborted", "cancelled", "denied", "timeout"},
    ),
    "evcharging_ocpp_stations_connected": ("version", {"ocpp1.6", "ocpp2.0.1"}),
    "evcharging_ocpp_errors_total": ("kind", {"formation_violation", "call_timeout"}),
}


def samples(endpoint: Endpoint) -> list[Sample]:
    return [
        s for family in text_string_to_metric_families(scrape(endpoint)) for s in family.samples
    ]


def value(found: list[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in found if s.name == name and labels.items() <= s.labels.items()]
    assert matching, f"no sample {name}{labels}"
    return sum(matching)


@pytest.mark.parametrize("component", ["central", "engine", "monitor", "driver", "ocpp"])
def test_every_exposition_passes_promtool(observed: Observed, component: str) -> None:
    promtool = prometheus_tool("promtool")
    for endpoint in observed.system.of(component):
        checked = subprocess.run(
            [promtool, "check", "metrics"],
            input=scrape(endpoint),
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert checked.returncode == 0, f"{endpoint.name}: {checked.stdout}{checked.stderr}"


@pytest.mark.parametrize("component", sorted(REQUIRED))
def test_every_component_exports_what_operators_need(observed: Observed, component: str) -> None:
    for endpoint in observed.system.of(component):
        names = {s.name for s in samples(endpoint)}
        assert REQUIRED[component] - names == set(), endpoint.name
        for metric, (label, values) in PREINITIALISED.items():
            if metric.startswith(f"evcharging_{component}_"):
                seen = {s.labels[label] for s in samples(endpoint) if s.name == metric}
                assert values <= seen, f"{endpoint.name}: {metric} lacks {values - seen}"


def test_the_central_shows_the_completed_session_its_energy_and_revenue(
    observed: Observed,
) -> None:
    (ended,) = [s for s in observed.system.sessions("CP-0") if s["status"] == "ended"]
    central = samples(observed.system.endpoint("central"))
    assert value(central, "evcharging_central_sessions_started_total", origin="driver") == 2
    assert value(central, "evcharging_central_sessions_completed_total") == 1
    assert value(central, "evcharging_central_energy_delivered_kwh_total") == pytest.approx(
        ended["kwh"]
    )
    assert value(central, "evcharging_central_revenue_eur_total") == pytest.approx(ended["eur"])
    assert ended["eur"] > 0
    assert value(central, "evcharging_central_session_energy_kwh_count") == 1
    assert value(central, "evcharging_central_session_duration_seconds_count") == 1
    assert value(central, "evcharging_central_authorization_latency_seconds_count") == 2
    assert value(central, "evcharging_central_cp_state", cp_id="CP-0") == 0  # ACTIVE
    assert value(central, "evcharging_central_cp_state", cp_id="CP-1") == 1  # SUPPLYING
    # The monitors of CP-0 and CP-1, and the gateway's link for the station's connector.
    assert value(central, "evcharging_central_connected_monitors") == 3
    assert value(central, "evcharging_central_ready") == 1


def test_the_engines_show_the_running_supply(observed: Observed) -> None:
    supplying = samples(observed.system.endpoint("CP-1/engine"))
    assert value(supplying, "evcharging_engine_supplying") == 1
    assert value(supplying, "evcharging_engine_power_kw") == 22.0  # --power-kw default
    assert value(supplying, "evcharging_engine_session_energy_kwh") > 0
    done = samples(observed.system.endpoint("CP-0/engine"))
    assert value(done, "evcharging_engine_supplying") == 0
    assert value(done, "evcharging_engine_power_kw") == 0
    assert value(done, "evcharging_engine_sessions_total", outcome="completed") == 1


def test_the_monitors_show_both_links_up_and_health_checks(observed: Observed) -> None:
    for endpoint in observed.system.of("monitor"):
        found = samples(endpoint)
        assert value(found, "evcharging_monitor_engine_connected") == 1, endpoint.name
        assert value(found, "evcharging_monitor_central_connected") == 1, endpoint.name
        assert value(found, "evcharging_monitor_health_check_latency_seconds_count") > 0


def test_the_driver_counts_its_requests_and_outcomes(observed: Observed) -> None:
    found = samples(observed.system.endpoint(f"driver {DRIVER_ID}"))
    assert value(found, "evcharging_driver_requests_total") == 2
    assert value(found, "evcharging_driver_outcomes_total", outcome="completed") == 1


def test_the_gateway_shows_its_station_and_the_calls_it_timed(observed: Observed) -> None:
    found = samples(observed.system.endpoint("ocpp gateway"))
    assert value(found, "evcharging_ocpp_stations_connected", version="ocpp1.6") == 1
    assert value(found, "evcharging_ocpp_central_links") == 1  # connector 1 of STATION_ID
    assert value(found, "evcharging_ocpp_messages_total", action="BootNotification") == 2
    assert value(found, "evcharging_ocpp_call_latency_seconds_count", action="TriggerMessage") == 2
    assert observed.system.cp(f"{STATION_ID}-1")["state"] == "ACTIVE"
