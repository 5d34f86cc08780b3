"""The HTTP API (docs/interfaces.md "Central HTTP API") and the dashboard's files."""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any, NoReturn

from aiohttp import web
from evproto.logs import kv
from evproto.vocabulary import MAX_PRICE_EUR_PER_KWH
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from evcentral.db import Database
from evcentral.enrollment import DriverEnrollment
from evcentral.history import StateHistory
from evcentral.http.access import Access, Role, TokenProblem
from evcentral.http.drivers import add_driver_routes
from evcentral.http.events import EventHub, sse_handler
from evcentral.http.fleet import FleetReads
from evcentral.http.queries import cp_query, session_query
from evcentral.metrics import CentralMetrics
from evcentral.operator_actions import OperatorActions
from evcentral.refusals import Door, Refusal, Refusals
from evcentral.registry import ChargingPoint, Registry
from evcentral.views import cp_view, session_view

__all__ = ["HttpDeps", "Readiness", "build_app"]

log = logging.getLogger("evcentral.http")

_MAX_BODY = 64 * 1024
_BODY_TIMEOUT = 10.0
_MAX_TOKEN = 36  # OCPP 2.0.1 idToken (1.6 idTag: 20)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}\Z")
_STATIC = resources.files("evcentral.http") / "static"
_ROLE = web.RequestKey("role", Role)  # set by _Api.reads for the handler it guards


@dataclass(frozen=True, slots=True)
class Readiness:
    database: bool
    broker: bool
    listener: bool

    @property
    def ready(self) -> bool:
        return self.database and self.broker and self.listener


@dataclass(frozen=True, slots=True)
class HttpDeps:
    registry: Registry
    db: Database
    operator: OperatorActions
    enrollment: DriverEnrollment
    hub: EventHub
    metrics: CentralMetrics
    access: Access
    refusals: Refusals
    readiness: Callable[[], Readiness]
    open_sessions: Callable[[], dict[str, Any]]  # session id -> live record (newer than the db)
    history: StateHistory


def _error(status: type[web.HTTPException], message: str) -> NoReturn:
    raise status(text=json.dumps({"error": message}), content_type="application/json")


def build_app(deps: HttpDeps) -> web.Application:
    app = web.Application(
        client_max_size=_MAX_BODY, middlewares=[_count_requests(deps.metrics), _json_errors]
    )
    api = _Api(deps)
    fleet = FleetReads(deps.registry, deps.db, deps.history, deps.open_sessions, shown=api.shown_to)
    app.router.add_get("/", _static_file("index.html", "text/html"))
    app.router.add_get("/static/app.js", _static_file("app.js", "text/javascript"))
    app.router.add_get("/static/style.css", _static_file("style.css", "text/css"))
    app.router.add_get("/api/whoami", api.whoami)
    app.router.add_get("/api/summary", api.reads(fleet.summary))
    app.router.add_get("/api/cps", api.list_cps)
    app.router.add_post("/api/cps/stop", api.stop_all)
    app.router.add_post("/api/cps/resume", api.resume_all)
    app.router.add_get("/api/cps/{cp_id}", api.get_cp)
    app.router.add_post("/api/cps/{cp_id}/stop", api.stop_cp)
    app.router.add_post("/api/cps/{cp_id}/resume", api.resume_cp)
    app.router.add_put("/api/cps/{cp_id}/price", api.set_price)
    app.router.add_post("/api/cps/{cp_id}/reset", api.reset_cp)
    app.router.add_get("/api/cps/{cp_id}/history", api.reads(fleet.cp_history))
    app.router.add_get("/api/sessions", api.list_sessions)
    app.router.add_get("/api/sessions.csv", api.reads(fleet.sessions_csv, by_driver=True))
    app.router.add_get("/api/events", sse_handler(deps.hub, api.reader))
    app.router.add_post("/api/drivers/{driver_id}/tokens", api.attach_token)
    add_driver_routes(app, deps.enrollment, api._authorize)
    app.router.add_get("/api/openapi.json", _openapi)
    app.router.add_get("/metrics", api.metrics_text)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", api.readyz)
    return app


class _Api:
    def __init__(self, deps: HttpDeps) -> None:
        self.d = deps

    # --- helpers -------------------------------------------------------------------

    def reader(self, request: web.Request) -> Role:
        """The caller's role; 401 without the viewer or the operator token."""
        header = request.headers.get("Authorization", "")
        if not header.isascii():  # a token is ASCII; other bytes cannot be compared
            self._refuse(request, Refusal.WRONG_TOKEN)
            _error(web.HTTPUnauthorized, "the Authorization header must be ASCII")
        role = self.d.access.role_of(header)
        if role is TokenProblem.MISSING:
            self._refuse(request, Refusal.NO_TOKEN)
            _error(
                web.HTTPUnauthorized,
                "a token is required: Authorization: Bearer <viewer or operator token>",
            )
        if role is TokenProblem.WRONG:
            self._refuse(request, Refusal.WRONG_TOKEN)
            _error(web.HTTPUnauthorized, "the token is neither the viewer nor the operator token")
        return role

    def _reader_by_driver(self, request: web.Request) -> Role:
        """A session read; filtering by driver id is the operator's (403 for a viewer)."""
        role = self.reader(request)
        if request.query.get("driver_id") and role is not Role.OPERATOR:
            # a viewer could otherwise test whether a driver it knows by name charged here
            self._refuse(request, Refusal.OPERATOR_ONLY)
            _error(web.HTTPForbidden, "filtering by driver id needs the operator token")
        return role

    def reads(self, handler: Handler, *, by_driver: bool = False) -> Handler:
        """``handler`` behind the read check; the role is kept in the request."""

        async def guarded(request: web.Request) -> web.StreamResponse:
            request[_ROLE] = self._reader_by_driver(request) if by_driver else self.reader(request)
            return await handler(request)

        return guarded

    def shown_to(self, request: web.Request, view: dict[str, Any]) -> dict[str, Any]:
        """``view`` as the caller of a :meth:`reads` handler may see it."""
        return self._shown(request[_ROLE], view)

    def _authorize(self, request: web.Request) -> None:
        """Actions: 401 without a valid token, 403 with the viewer's."""
        if self.reader(request) is not Role.OPERATOR:
            self._refuse(request, Refusal.OPERATOR_ONLY)
            _error(web.HTTPForbidden, "this action needs the operator token, not the viewer's")

    def _refuse(self, request: web.Request, reason: Refusal) -> None:
        peer = request.remote or "unknown"
        self.d.refusals.refuse(Door.HTTP, reason, peer, f"{request.method} {request.path}")

    def _shown(self, role: Role, view: dict[str, Any]) -> dict[str, Any]:
        return view if role is Role.OPERATOR else self.d.access.redact(view)

    def _cp(self, request: web.Request) -> ChargingPoint:
        cp_id = request.match_info["cp_id"]
        cp = self.d.registry.get(cp_id)
        if cp is None:
            _error(web.HTTPNotFound, f"no charging point {cp_id!r}")
        return cp

    # --- charging points ---------------------------------------------------------------

    async def whoami(self, request: web.Request) -> web.Response:
        """Which role the caller's token has (the dashboard's sign-in checks it)."""
        return web.json_response({"role": self.reader(request).value})

    async def list_cps(self, request: web.Request) -> web.Response:
        role = self.reader(request)
        wanted = cp_query(request.query)
        cps = sorted(
            (cp for cp in self.d.registry if wanted.matches(cp.cp_id, cp.location, cp.state)),
            key=lambda cp: cp.cp_id,
        )
        return web.json_response({"cps": [self._shown(role, cp_view(cp)) for cp in cps]})

    async def get_cp(self, request: web.Request) -> web.Response:
        role = self.reader(request)
        return web.json_response(self._shown(role, cp_view(self._cp(request))))

    async def stop_cp(self, request: web.Request) -> web.Response:
        self._authorize(request)
        cp = self._cp(request)
        self.d.operator.stop(cp)
        return web.json_response(cp_view(cp), status=202)

    async def resume_cp(self, request: web.Request) -> web.Response:
        self._authorize(request)
        cp = self._cp(request)
        self.d.operator.resume(cp)
        return web.json_response(cp_view(cp), status=202)

    async def reset_cp(self, request: web.Request) -> web.Response:
        self._authorize(request)
        cp = self._cp(request)
        self.d.operator.reset(cp)
        return web.json_response(cp_view(cp), status=202)

    async def stop_all(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return web.json_response({"affected": self.d.operator.stop_all()}, status=202)

    async def resume_all(self, request: web.Request) -> web.Response:
        self._authorize(request)
        return web.json_response({"affected": self.d.operator.resume_all()}, status=202)

    async def set_price(self, request: web.Request) -> web.Response:
        self._authorize(request)
        cp = self._cp(request)
        price = _price_from(await _read_body(request))
        self.d.operator.set_price(cp, price)
        return web.json_response(cp_view(cp))

    # --- sessions ---------------------------------------------------------------------

    async def list_sessions(self, request: web.Request) -> web.Response:
        role = self._reader_by_driver(request)
        query = session_query(request.query)
        rows = self.d.db.list_sessions(where=query.where, limit=query.limit, offset=query.offset)
        live = self.d.open_sessions()  # telemetry not yet flushed to the database
        return web.json_response(
            {
                "sessions": [
                    self._shown(role, session_view(live.get(s.session_id, s))) for s in rows
                ],
                "total": self.d.db.count_sessions(query.where),
                "offset": query.offset,
                "limit": query.limit,
            }
        )

    # --- drivers ------------------------------------------------------------------------

    async def attach_token(self, request: web.Request) -> web.Response:
        """An idToken (RFID card) of this driver, presented at OCPP stations."""
        self._authorize(request)
        driver_id = request.match_info["driver_id"]
        if not _ID.match(driver_id):
            _error(web.HTTPBadRequest, "driver_id must be 1-64 letters, digits or ._:@-")
        id_token = _token_from(await _read_body(request))
        self.d.db.attach_token(driver_id, id_token, time.time())
        log.info("idToken attached %s", kv(driver=driver_id))
        return web.json_response({"driver_id": driver_id, "attached": True}, status=201)

    # --- operations -----------------------------------------------------------------------

    async def metrics_text(self, _request: web.Request) -> web.Response:
        body = generate_latest(self.d.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def readyz(self, _request: web.Request) -> web.Response:
        state = self.d.readiness()
        body = {
            "ready": state.ready,
            "database": state.database,
            "broker": state.broker,
            "listener": state.listener,
        }
        return web.json_response(body, status=200 if state.ready else 503)


async def _read_body(request: web.Request) -> bytes:
    """The body (at most ``client_max_size``), from a client that sends it in time."""
    try:
        async with asyncio.timeout(_BODY_TIMEOUT):
            return await request.read()
    except TimeoutError:
        _error(web.HTTPRequestTimeout, f"the body did not arrive within {_BODY_TIMEOUT}s")


def _price_from(body: bytes) -> float:
    example = 'a JSON body like {"price": 0.35}'
    try:
        data = json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError, RecursionError):
        _error(web.HTTPBadRequest, f"the body is not JSON; send {example}")
    if not isinstance(data, dict) or "price" not in data:
        _error(web.HTTPBadRequest, f"the body has no price; send {example}")
    if unknown := sorted(set(data) - {"price"}):
        _error(web.HTTPBadRequest, f"unknown field {unknown[0][:40]!r}; send {example}")
    price = data["price"]
    if isinstance(price, bool) or not isinstance(price, int | float):
        _error(web.HTTPBadRequest, f"price must be a number in €/kWh, got {price!r:.40}")
    try:
        finite = math.isfinite(price)
    except OverflowError:  # an integer of hundreds of digits
        finite = False
    if not finite:
        _error(web.HTTPBadRequest, f"price must be between 0 and {MAX_PRICE_EUR_PER_KWH} €/kWh")
    if not 0 <= price <= MAX_PRICE_EUR_PER_KWH:
        _error(web.HTTPBadRequest, f"price must be between 0 and {MAX_PRICE_EUR_PER_KWH} €/kWh")
    return float(price)


def _token_from(body: bytes) -> str:
    example = 'a JSON body like {"id_token": "04A2B3C4"}'
    try:
        data = json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError, RecursionError):
        _error(web.HTTPBadRequest, f"the body is not JSON; send {example}")
    if isinstance(data, dict) and (unknown := sorted(set(data) - {"id_token"})):
        _error(web.HTTPBadRequest, f"unknown field {unknown[0][:40]!r}; send {example}")
    token = data.get("id_token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not 1 <= len(token) <= _MAX_TOKEN or not token.isprintable():
        _error(
            web.HTTPBadRequest,
            f"id_token must be 1-{_MAX_TOKEN} printable characters; send {example}",
        )
    return token


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _openapi(_request: web.Request) -> web.Response:
    body = (resources.files("evcentral.http") / "openapi.json").read_bytes()
    return web.Response(body=body, content_type="application/json")


def _static_file(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(_request: web.Request) -> web.Response:
        return web.Response(
            body=(_STATIC / name).read_bytes(),
            content_type=content_type,
            charset="utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    return serve


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _count_requests(metrics: CentralMetrics) -> Any:
    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            metrics.http_requests.labels(request.method, str(status)).inc()

    return count


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error is JSON ``{"error": ...}``, also aiohttp's own 404/405/413."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        dropped = ("content-type", "content-length")
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in dropped}
        message = exc.text.strip() if exc.text else exc.reason
        return web.json_response({"error": message}, status=exc.status, headers=headers)
    except Exception:
        log.exception("request failed %s %s", request.method, request.path)
        return web.json_response({"error": "internal error; see the central's log"}, status=500)
