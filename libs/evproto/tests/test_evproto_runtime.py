"""Runtime helpers: per-type routing, peer retries, the metrics endpoint."""

from __future__ import annotations

import urllib.request

import pytest
from evproto.errors import ConfigError, LinkClosed, UnknownMessageType
from evproto.messages import HealthRequest, InfoRequest
from evproto.metrics import serve_metrics
from evproto.retry import backoff_delay, peer_retry
from evproto.routing import CallbackRouter, Router
from evproto.schema import Message, MsgType
from evstack.broker import free_port
from prometheus_client import CollectorRegistry, Counter


async def test_the_router_calls_the_handler_registered_for_the_type() -> None:
    router = Router()
    seen: list[tuple[Message, str]] = []

    @router.on(MsgType.HEALTH_REQUEST)
    async def on_health(msg: HealthRequest, link: str) -> str:
        seen.append((msg, link))
        return "answered"

    assert await router.dispatch(HealthRequest(seq=1), "link-1") == "answered"
    assert seen == [(HealthRequest(seq=1), "link-1")]
    assert router.kinds == frozenset({MsgType.HEALTH_REQUEST})


async def test_the_router_refuses_an_unhandled_type_and_double_registration() -> None:
    router = Router()

    @router.on(MsgType.INFO_REQUEST)
    async def first(_msg: InfoRequest) -> None:
        return None

    with pytest.raises(UnknownMessageType, match="no handler for health_request"):
        await router.dispatch(HealthRequest(seq=1))
    with pytest.raises(ValueError, match="already registered"):
        router.on(MsgType.INFO_REQUEST)(first)


def test_the_callback_router_calls_plain_functions_and_refuses_the_rest() -> None:
    router = CallbackRouter()
    seen: list[tuple[Message, str]] = []

    @router.on(MsgType.HEALTH_REQUEST)
    def on_health(msg: HealthRequest, link: str) -> str:
        seen.append((msg, link))
        return "answered"

    assert router.dispatch(HealthRequest(seq=1), "link-1") == "answered"
    assert seen == [(HealthRequest(seq=1), "link-1")]
    with pytest.raises(UnknownMessageType, match="no handler for info_request"):
        router.dispatch(InfoRequest())
    with pytest.raises(ValueError, match="already registered"):
        router.on(MsgType.HEALTH_REQUEST)(on_health)


async def test_peer_retry_retries_temporary_errors_until_success() -> None:
    calls = 0
    async for attempt in peer_retry("central", initial=0.001, cap=0.01):
        with attempt:
            calls += 1
            if calls < 3:
                raise LinkClosed("down")
    assert calls == 3


async def test_peer_retry_fails_fast_on_permanent_errors() -> None:
    calls = 0
    with pytest.raises(ConfigError):
        async for attempt in peer_retry("central", initial=0.001):
            with attempt:
                calls += 1
                raise ConfigError("bad flag")
    assert calls == 1


async def test_peer_retry_gives_up_after_the_attempts_with_the_last_error() -> None:
    with pytest.raises(LinkClosed, match="still down"):
        async for attempt in peer_retry("central", initial=0.001, attempts=2):
            with attempt:
                raise LinkClosed("still down")


def test_serve_metrics_exposes_the_registry_and_empty_means_off() -> None:
    registry = CollectorRegistry()
    Counter("evcharging_test_frames_total", "frames", registry=registry).inc(3)
    port = free_port()

    serve_metrics("", registry)  # disabled: nothing to check but that it returns
    serve_metrics(f"127.0.0.1:{port}", registry)

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        body = answer.read().decode()
    assert "evcharging_test_frames_total 3.0" in body


def test_a_backoff_doubles_from_its_first_wait_to_its_cap_with_jitter() -> None:
    waits = [backoff_delay(n, initial=0.2, cap=5.0) for n in (1, 2, 3, 10, 100)]
    for wait, nominal in zip(waits, (0.2, 0.4, 0.8, 5.0, 5.0), strict=True):
        assert 0.8 * nominal <= wait <= 1.2 * nominal
