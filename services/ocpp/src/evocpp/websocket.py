"""The WebSocket endpoint ``ws(s)://HOST:PORT/ocpp/<stationId>`` (aiohttp).

Before the upgrade: the station id must be a valid id, the client must offer
``ocpp2.0.1`` or ``ocpp1.6`` (2.0.1 is preferred when both are offered), and
the station must be admitted (known with the right Basic-auth password, or
enrolled now when enrollment is open). After it: :class:`WebSocketLink` gives
the ``ocpp`` library the ``recv()``/``send()`` it expects, with a bound on the
message size and an idle timeout on every read.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, WSMsgType, web
from evproto.logs import kv

from evocpp.metrics import ErrorKind, OcppMetrics, Version

__all__ = ["StationGone", "WebSocketLink", "basic_password", "make_app"]

log = logging.getLogger("evocpp.websocket")

# Room for "-<connector>" within the 64 characters of a CP id.
_STATION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,47}\Z")
_PREFERENCE = (Version.V201, Version.V16)

StationHandler = Callable[[str, Version, "WebSocketLink"], Awaitable[None]]
Admission = Callable[[str, str | None], bool]


class StationGone(Exception):
    """The WebSocket closed, failed, or the station fell silent for too long."""


class WebSocketLink:
    """One station's WebSocket as the ``ocpp`` library's connection."""

    def __init__(self, ws: web.WebSocketResponse, idle_timeout: float, metrics: OcppMetrics):
        self._ws = ws
        self._idle = idle_timeout
        self._metrics = metrics

    async def recv(self) -> str:
        try:
            msg = await self._ws.receive(timeout=self._idle)
        except TimeoutError:
            self._metrics.error(ErrorKind.IDLE_TIMEOUT)
            raise StationGone(f"nothing received for {self._idle:.0f}s") from None
        if msg.type is WSMsgType.TEXT:
            return str(msg.data)
        if msg.type is WSMsgType.BINARY:
            self._metrics.error(ErrorKind.BINARY_FRAME)
            return "binary frame"  # not JSON: answered as a formation violation
        if msg.type is WSMsgType.ERROR:
            if self._ws.close_code == WSCloseCode.MESSAGE_TOO_BIG:
                self._metrics.error(ErrorKind.TOO_LARGE)
            raise StationGone(f"websocket error: {self._ws.exception()}")
        raise StationGone("websocket closed")

    async def send(self, message: str) -> None:
        try:
            await self._ws.send_str(message)
        except (ConnectionError, RuntimeError) as exc:
            raise StationGone(f"cannot send: {exc}") from None

    async def close(self, why: str) -> None:
        await self._ws.close(code=WSCloseCode.GOING_AWAY, message=why.encode()[:120])


def basic_password(request: web.Request, station_id: str) -> str | None:
    """The password of ``Authorization: Basic`` when its user is the station, else None."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password if sep and user == station_id else None


def make_app(
    admit: Admission,
    on_station: StationHandler,
    metrics: OcppMetrics,
    *,
    max_message_bytes: int,
    idle_timeout: float,
) -> web.Application:
    async def station(request: web.Request) -> web.StreamResponse:
        station_id = request.match_info["station_id"]
        if not _STATION_ID.match(station_id):
            return web.json_response({"error": "not a valid station id"}, status=404)
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        version = next((v for v in _PREFERENCE if v.value in offered), None)
        if version is None:
            metrics.error(ErrorKind.BAD_SUBPROTOCOL)
            log.info("refused %s", kv(station=station_id, reason="no ocpp subprotocol"))
            return web.json_response(
                {"error": "offer the ocpp1.6 or ocpp2.0.1 subprotocol"}, status=400
            )
        if not admit(station_id, basic_password(request, station_id)):
            return web.json_response(
                {"error": "unknown station or wrong credentials"},
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="evocpp"'},
            )
        ws = web.WebSocketResponse(
            protocols=(version.value,), max_msg_size=max_message_bytes, autoping=True
        )
        await ws.prepare(request)
        await on_station(station_id, version, WebSocketLink(ws, idle_timeout, metrics))
        return ws

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/ocpp/{station_id}", station)
    app.router.add_get("/healthz", healthz)
    return app
