"""The gateway process: the WebSocket endpoint, the stations, Kafka and the metrics.

Everything runs on one event loop: a station costs one WebSocket, one reader
task, one call worker and, per connector, one framed link to the central.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiohttp import web
from evproto.errors import ConfigError, ProofError
from evproto.kafka import Record, wait_until_assigned
from evproto.lifecycle import DRAIN_SECONDS
from evproto.logs import kv
from evproto.messages import Directive, Origin, SupplyRequest, SupplyResponse
from evproto.metrics import serve_metrics
from evproto.proofs import Signer, check_from_central, cp_key_from_secret, prove
from evproto.schema import Message, new_id

from evocpp.kafka_io import KafkaSide
from evocpp.metrics import ErrorKind, OcppMetrics, Version
from evocpp.settings import Enrollment, OcppSettings
from evocpp.station import Station
from evocpp.store import StationStatus, Store
from evocpp.v16 import StationV16
from evocpp.v201 import StationV201
from evocpp.websocket import StationGone, WebSocketLink, make_app

__all__ = ["Gateway"]

log = logging.getLogger("evocpp")

_ENDPOINTS: dict[Version, type[StationV16] | type[StationV201]] = {
    Version.V16: StationV16,
    Version.V201: StationV201,
}


class Gateway:
    """Implements :class:`evocpp.station.StationServices` for every station."""

    def __init__(self, settings: OcppSettings, metrics: OcppMetrics | None = None) -> None:
        self.settings = settings
        self.metrics = metrics or OcppMetrics()
        self.store = Store(settings.db_path)
        self.kafka = KafkaSide(
            settings.kafka_settings_for("evocpp"), group_id="evocpp", handler=self._on_kafka
        )
        self.ready = asyncio.Event()
        self.port = 0
        self._held: dict[str, Station] = {}
        self._links: dict[str, WebSocketLink] = {}
        self._answers: dict[str, asyncio.Future[SupplyResponse]] = {}

    @property
    def url(self) -> str:
        host, _port = self.settings.listen_address
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"{self.settings.scheme}://{shown}:{self.port}/ocpp/<stationId>"

    # --- the process -------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        settings = self.settings
        try:
            serve_metrics(settings.metrics, self.metrics.registry, ready=self.ready.is_set)
        except OSError as exc:
            raise ConfigError(f"--metrics {settings.metrics}: cannot listen: {exc}") from None
        await self.kafka.start()
        reading = asyncio.create_task(self.kafka.read(stop, self.ready), name="kafka-read")
        try:
            # stations only once the directives are read: a directive published before the
            # reader's position is resolved ("latest") would be skipped, an operator's STOP lost
            if not await wait_until_assigned(reading, self.ready, stop):
                return
            await self._serve_stations(stop)
        finally:
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reading
            await self.kafka.close(DRAIN_SECONDS / 2)
            self.store.close()
            log.info("gateway stopped")

    async def _serve_stations(self, stop: asyncio.Event) -> None:
        settings = self.settings
        app = make_app(
            self.admit,
            self.attach,
            self.metrics,
            max_message_bytes=settings.max_message_bytes,
            idle_timeout=settings.heartbeat_interval * 3 + 10,
        )
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        host, port = settings.listen_address
        site = web.TCPSite(runner, host, port, ssl_context=settings.server_ssl_context())
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise ConfigError(f"--listen {settings.listen}: cannot listen: {exc}") from None
        server = site._server
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        log.info("gateway ready %s", kv(url=self.url, enrollment=settings.enrollment,
                                        central=settings.central))  # fmt: skip
        try:
            await stop.wait()
        finally:
            for link in list(self._links.values()):
                await link.close("gateway stopping")
            await runner.cleanup()

    # --- stations ----------------------------------------------------------------------

    def admit(self, station_id: str, password: str | None) -> bool:
        record = self.store.station(station_id)
        if record is None:
            mode = self.settings.enrollment_mode
            if mode is Enrollment.CLOSED:
                self.metrics.error(ErrorKind.UNKNOWN_STATION)
                log.info("refused %s", kv(station=station_id, reason="unknown station"))
                return False
            status = StationStatus.ACCEPTED if mode is Enrollment.AUTO else StationStatus.PENDING
            self.store.enroll(station_id, status, password, time.time())
            log.info("station enrolled %s", kv(station=station_id, status=status.value,
                                                password=bool(password)))  # fmt: skip
            return True
        if record.status is StationStatus.REJECTED or not record.password_ok(password):
            self.metrics.error(ErrorKind.AUTH_FAILED)
            log.info("refused %s", kv(station=station_id, reason="wrong credentials"))
            return False
        return True

    async def attach(self, station_id: str, version: Version, link: WebSocketLink) -> None:
        """Serve one station's WebSocket until it closes; a newer one replaces it."""
        old = self._links.get(station_id)
        if old is not None:
            await old.close("replaced by a new connection")
        self._links[station_id] = link
        endpoint = _ENDPOINTS[version](station_id, link, self)
        gauge = self.metrics.stations_connected.labels(version=version.value)
        gauge.inc()
        log.info("station connected %s", kv(station=station_id, version=version.value))
        try:
            await endpoint.start()
        except StationGone as exc:
            log.info("station disconnected %s", kv(station=station_id, reason=exc))
        finally:
            gauge.dec()
            if self._links.get(station_id) is link:
                del self._links[station_id]
            await endpoint.station.close()

    # --- evocpp.station.StationServices ----------------------------------------------

    def hold(self, cp_id: str, station: Station) -> None:
        self._held[cp_id] = station

    def release(self, cp_id: str, station: Station) -> None:
        if self._held.get(cp_id) is station:
            del self._held[cp_id]

    def _record_key(self, cp_id: str) -> bytes | None:
        """The connector's record key, derived from its CP secret as a monitor derives it."""
        secret = self.store.secret(cp_id)
        return None if secret is None else cp_key_from_secret(secret)

    def publish(self, cp_id: str, msg: Message) -> None:
        """As an engine: what the connector reports is proven with its record key."""
        key = self._record_key(cp_id)
        self.kafka.send(cp_id, msg if key is None else prove(msg, key, Signer.CP))

    async def authorize(self, cp_id: str, id_token: str) -> SupplyResponse | None:
        """Ask the central to authorize ``id_token`` at ``cp_id`` as the driver it belongs to."""
        request = SupplyRequest(
            request_id=new_id(),
            requester_id=cp_id,
            origin=Origin.STATION,
            cp_id=cp_id,
            id_token=id_token,
            sent_at=time.time(),
            ttl_s=self.settings.authorize_timeout,
        )
        answer: asyncio.Future[SupplyResponse] = asyncio.get_running_loop().create_future()
        self._answers[request.request_id] = answer
        try:
            self.publish(cp_id, request)
            return await asyncio.wait_for(answer, self.settings.authorize_timeout)
        except TimeoutError:
            log.warning("no authorization answer %s", kv(cp=cp_id))
            return None
        finally:
            self._answers.pop(request.request_id, None)

    # --- Kafka ---------------------------------------------------------------------------

    def _check_from_central(self, msg: Directive | SupplyResponse, cp_id: str) -> None:
        """A directive or an answer is obeyed only when the central proved it (and it is
        fresh); anything else is dead-lettered with the reason, as an engine does."""
        key = self._record_key(cp_id)
        if key is None:
            raise ProofError(f"{cp_id} has no secret here: cannot check the central's proof")
        check_from_central(msg, key, msg.sent_at)

    async def _on_kafka(self, msg: Message, _record: Record) -> None:
        if isinstance(msg, Directive):
            station = self._held.get(msg.cp_id)
            if station is not None:
                self._check_from_central(msg, msg.cp_id)
                station.on_directive(msg)
        elif isinstance(msg, SupplyResponse):
            answer = self._answers.get(msg.request_id)
            if answer is not None and not answer.done():
                self._check_from_central(msg, msg.requester_id)
                answer.set_result(msg)
