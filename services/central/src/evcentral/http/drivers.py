"""Driver credentials over HTTP (operator only): enroll, list, revoke.

``POST /api/drivers`` ``{"driver_id": "D1"}`` -> ``201 {"driver_id", "secret"}``:
the secret is shown this once and never stored (the central keeps a key
derived from it). ``GET /api/drivers`` lists enrolled drivers (no keys);
``DELETE /api/drivers/{id}`` revokes one, so it can be enrolled again.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from aiohttp import web
from evproto.schema import ident

from evcentral.enrollment import DriverEnrollment

__all__ = ["add_driver_routes"]

_ID_CHECK = ident().metadata["pattern"]


def add_driver_routes(
    app: web.Application,
    enrollment: DriverEnrollment,
    authorize: Callable[[web.Request], None],
) -> None:
    async def enroll(request: web.Request) -> web.Response:
        authorize(request)
        driver_id = _driver_id_from(await request.read())
        secret = enrollment.enroll(driver_id)
        if secret is None:
            raise _json(web.HTTPConflict, f"{driver_id} is already enrolled (or is a CP id)")
        return web.json_response({"driver_id": driver_id, "secret": secret}, status=201)

    async def listing(request: web.Request) -> web.Response:
        authorize(request)
        return web.json_response({"drivers": enrollment.drivers()})

    async def revoke(request: web.Request) -> web.Response:
        authorize(request)
        driver_id = request.match_info["driver_id"]
        if not enrollment.revoke(driver_id):
            raise _json(web.HTTPNotFound, f"no enrolled driver {driver_id!r}")
        return web.json_response({"driver_id": driver_id, "revoked": True})

    app.router.add_post("/api/drivers", enroll)
    app.router.add_get("/api/drivers", listing)
    app.router.add_delete("/api/drivers/{driver_id}", revoke)


def _json(status: type[web.HTTPException], message: str) -> web.HTTPException:
    return status(text=json.dumps({"error": message}), content_type="application/json")


def _driver_id_from(body: bytes) -> str:
    example = 'a JSON body like {"driver_id": "D1"}'
    try:
        data = json.loads(body or b"null")
    except (UnicodeDecodeError, ValueError):
        raise _json(web.HTTPBadRequest, f"the body is not JSON; send {example}") from None
    driver_id = data.get("driver_id") if isinstance(data, dict) else None
    if not isinstance(driver_id, str) or not _ID_CHECK.match(driver_id):
        raise _json(
            web.HTTPBadRequest, f"driver_id must be 1-64 letters, digits or ._:@- ({example})"
        )
    return driver_id
