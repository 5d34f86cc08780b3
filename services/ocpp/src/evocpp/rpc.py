"""OCPP-J framing and call handling on top of the ``ocpp`` library, hardened.

The library's ``ChargePoint`` validates payloads against the official JSON
schemas, routes calls to ``@on`` handlers and pairs our calls with their
results. :class:`Endpoint` adds what a server facing the open internet needs:

- input that is not an OCPP-J frame gets a CallError (``FormationViolation`` /
  ``FormatViolation`` or ``ProtocolError``, message id ``-1`` when none can be
  read) instead of being logged and dropped; every refusal is counted by kind;
- calls before the station's boot was accepted get ``SecurityError``;
- the station's calls are handled one after another by a worker, so a handler
  that waits (an idToken the central must authorize) never blocks the results
  of the gateway's own calls; at most a few calls may wait, more is a
  ``ProtocolError`` (OCPP allows one in flight);
- the gateway's calls time out (``--call-timeout``), are timed, and come back
  as None instead of raising.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any, Protocol

import ocpp.messages
from evproto.logs import kv
from ocpp import exceptions as ocpp_errors
from ocpp.messages import Call, CallError, MessageType, unpack

from evocpp.metrics import ErrorKind, OcppMetrics, Result, Version

__all__ = ["WIRE_LOG", "Endpoint", "StationSocket"]

log = logging.getLogger("evocpp.rpc")
# The library logs every frame at INFO: for debugging the wire only.
WIRE_LOG = logging.getLogger("evocpp.wire")
WIRE_LOG.setLevel(logging.WARNING)

# Validate inline: a thread-pool hop per message costs more than these small schemas.
ocpp.messages.ASYNC_VALIDATION = False

_MAX_WAITING_CALLS = 4
_SCHEMA_ERRORS = (
    ocpp_errors.FormatViolationError,
    ocpp_errors.FormationViolationError,
    ocpp_errors.PropertyConstraintViolationError,
    ocpp_errors.OccurenceConstraintViolationError,
    ocpp_errors.OccurrenceConstraintViolationError,
    ocpp_errors.TypeConstraintViolationError,
)
_KIND_OF_ERROR: dict[type[ocpp_errors.OCPPError], ErrorKind] = {
    ocpp_errors.NotImplementedError: ErrorKind.NOT_IMPLEMENTED,
    ocpp_errors.NotSupportedError: ErrorKind.NOT_SUPPORTED,
    ocpp_errors.ProtocolError: ErrorKind.PROTOCOL_ERROR,
    ocpp_errors.SecurityError: ErrorKind.NOT_ACCEPTED,
}
# The two versions spell some error codes differently.
_CODES = {
    Version.V16: {"FormatViolation": "FormationViolation"},
    Version.V201: {
        "FormationViolation": "FormatViolation",
        "OccurenceConstraintViolation": "OccurrenceConstraintViolation",
    },
}


class StationSocket(Protocol):
    """What the library reads and writes: one text message at a time."""

    async def recv(self) -> str: ...
    async def send(self, message: str) -> None: ...


class Endpoint:
    """Mixin placed before ``ocpp.v16.ChargePoint`` / ``ocpp.v201.ChargePoint``."""

    version: Version
    _connection: StationSocket
    _response_queue: asyncio.Queue[Any]
    _call_lock: asyncio.Lock
    _response_timeout: float
    id: str

    def setup_endpoint(self, metrics: OcppMetrics, accepted: Any, actions: frozenset[str]) -> None:
        self._actions = actions
        self._metrics = metrics
        self._is_accepted = accepted  # () -> bool
        self._calls: asyncio.Queue[Call] = asyncio.Queue(_MAX_WAITING_CALLS)
        self._in_flight = 0  # our calls waiting for their result

    async def start(self) -> None:
        worker = asyncio.create_task(self._handle_calls(), name=f"ocpp-calls-{self.id}")
        try:
            while True:
                await self.route_message(await self._connection.recv())
        finally:
            worker.cancel()

    async def route_message(self, raw_msg: str) -> None:
        try:
            msg = unpack(raw_msg)
        except ocpp_errors.OCPPError as exc:
            kind = (
                ErrorKind.FORMATION_VIOLATION
                if isinstance(exc, ocpp_errors.FormatViolationError)
                else ErrorKind.PROTOCOL_ERROR
            )
            await self._refuse(_message_id(raw_msg), exc, kind)
            return
        if msg.message_type_id == MessageType.Call:
            if not isinstance(msg.action, str) or not isinstance(msg.payload, dict):
                error = ocpp_errors.ProtocolError(description="action or payload of the wrong type")
                await self._refuse(str(msg.unique_id), error, ErrorKind.PROTOCOL_ERROR)
                return
            try:
                self._calls.put_nowait(msg)
            except asyncio.QueueFull:
                error = ocpp_errors.ProtocolError(description="one call at a time, please")
                await self._refuse(str(msg.unique_id), error, ErrorKind.PROTOCOL_ERROR)
            return
        if self._in_flight == 0:
            self._metrics.error(ErrorKind.UNEXPECTED_RESULT)
            log.warning("result without a call %s", kv(station=self.id, id=msg.unique_id))
            return
        self._response_queue.put_nowait(msg)

    async def _handle_calls(self) -> None:
        while True:
            msg = await self._calls.get()
            await self._handle_one(msg)

    async def _handle_one(self, msg: Call) -> None:
        action = msg.action
        if not self._is_accepted() and action != "BootNotification":
            error = ocpp_errors.SecurityError(
                description="the station is not accepted: BootNotification first"
            )
            await self._refuse(msg.unique_id, error, ErrorKind.NOT_ACCEPTED, action)
            return
        try:
            await self._handle_call(msg)  # type: ignore[attr-defined]
        except ocpp_errors.OCPPError as error:
            kind = _KIND_OF_ERROR.get(type(error), ErrorKind.INTERNAL)
            if isinstance(error, _SCHEMA_ERRORS):
                kind = ErrorKind.SCHEMA_VIOLATION
            await self._refuse(msg.unique_id, error, kind, action)
            return
        except Exception:  # a bug of ours must not silence the station
            log.exception("handling failed %s", kv(station=self.id, action=action))
            internal = ocpp_errors.InternalError(description="the gateway failed to handle it")
            await self._refuse(msg.unique_id, internal, ErrorKind.INTERNAL, action)
            return
        self._metrics.messages.labels(action=self._label(action), result=Result.OK.value).inc()

    async def _refuse(
        self, unique_id: str, error: ocpp_errors.OCPPError, kind: ErrorKind, action: str = ""
    ) -> None:
        self._metrics.error(kind)
        if action:
            self._metrics.messages.labels(
                action=self._label(action), result=Result.ERROR.value
            ).inc()
        code = _CODES[self.version].get(error.code, error.code)
        log.info("refused %s", kv(station=self.id, action=action or None, code=code,
                                  error=error.description))  # fmt: skip
        reply = CallError(unique_id, code, error.description, error.details or {})
        await self._connection.send(reply.to_json())

    def _label(self, action: str) -> str:
        """Only the version's real actions become label values (no unbounded labels)."""
        return action if action in self._actions else "unknown"

    async def request(self, payload: Any) -> Any | None:
        """Our call to the station: its result, or None (refused, CallError, timeout)."""
        action = type(payload).__name__
        started = time.monotonic()
        self._in_flight += 1
        try:
            result = await self.call(payload, suppress=False)  # type: ignore[attr-defined]
        except TimeoutError:
            self._metrics.error(ErrorKind.CALL_TIMEOUT)
            log.warning("no answer %s", kv(station=self.id, action=action))
            return None
        except ocpp_errors.OCPPError as exc:
            log.warning("call refused %s", kv(station=self.id, action=action, code=exc.code))
            return None
        finally:
            self._in_flight -= 1
        self._metrics.call_latency.labels(action=action).observe(time.monotonic() - started)
        return result


def _message_id(raw: str) -> str:
    """The message id of a frame that could not be used, or ``-1`` (OCPP-J)."""
    try:
        frame = json.loads(raw)
    except (ValueError, TypeError):
        return "-1"
    if isinstance(frame, list) and len(frame) > 1 and isinstance(frame[1], str):
        return frame[1][:36]
    return "-1"
