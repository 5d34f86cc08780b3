"""Nothing on Kafka is taken by its word: every record the central acts on is proven.

Each handler of a consumed message type is wrapped by :meth:`ProofGate.guard`:
before it runs, the record's proof is checked with the key of whom it names
(a driver's request key, a CP's record key, the enrollment token); a record
that is not proven, or that the handler finds implausible, is counted,
journaled and re-raised so the consumer dead-letters it with the reason. It
changes no session, no metric but the refusal counter, and no revenue.
When a refused request names an enrolled driver, that driver alone is told
(the answer is sealed with its key).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from evproto.errors import ImplausibleRecord, ProofError
from evproto.kafka import Record
from evproto.logs import kv
from evproto.messages import (
    EnrollRequest,
    Origin,
    SupplyRequest,
    SupplyResponse,
    SupplyStarted,
    SupplyStop,
    Telemetry,
    Ticket,
)
from evproto.proofs import Signer, check_fresh, token_key, verify
from evproto.schema import Message

from evcentral.core import Core
from evcentral.journal import LogKind
from evcentral.keyring import Keyring

__all__ = ["REQUEST_MAX_AGE", "ProofGate"]

log = logging.getLogger("evcentral.proofs")

# A proven request older than this (or this far in the future) is a replay or a
# broken clock. Requests expire sooner anyway (their ttl_s, 30 s by default).
REQUEST_MAX_AGE = 300.0
# A flood of forged records must not push the operator's events out of the journal:
# one line per (type, reason, claimed sender) this often; the metric counts them all.
_JOURNAL_QUIET_S = 10.0
_JOURNAL_TRACKED = 4096

_M = TypeVar("_M", bound=Message)
Handler = Callable[[_M, Record], Awaitable[None]]


class ProofGate:
    def __init__(self, core: Core, keys: Keyring, *, enrollment_token: str) -> None:
        self._keys = keys
        self._journal = core.journal
        self._metrics = core.metrics
        self._outbox = core.outbox
        self._clock = core.clock
        self._token_key = token_key(enrollment_token) if enrollment_token else None
        self._journaled: dict[tuple[str, str, str], tuple[float, int]] = {}
        self._monotonic = time.monotonic

    def guard(self, handler: Handler[Any]) -> Handler[Any]:
        """``handler`` behind the proof check; refusals counted, journaled, re-raised."""

        async def guarded(msg: Message, record: Record) -> None:
            try:
                self.check(msg)
                await handler(msg, record)
            except (ProofError, ImplausibleRecord) as exc:
                self._refused(msg, exc)
                raise

        return guarded

    # --- the checks, one per kind of sender -----------------------------------------

    def check(self, msg: Message) -> None:
        """Raise :class:`ProofError` unless ``msg`` is proven by whom it names."""
        match msg:
            case SupplyStarted() | Telemetry() | Ticket():
                self._cp_proof(msg, msg.cp_id)
            case SupplyRequest(origin=Origin.MANUAL | Origin.STATION):
                self._cp_proof(msg, msg.requester_id)  # the CP (or OCPP connector) asks
                check_fresh(msg.sent_at, REQUEST_MAX_AGE, self._clock())
            case SupplyRequest() | SupplyStop():
                if isinstance(msg, SupplyStop) and self._keys.is_cp(msg.requester_id):
                    self._cp_proof(msg, msg.requester_id)  # a manual supply ended at its CP
                else:
                    self._driver_proof(msg, msg.requester_id)
                check_fresh(msg.sent_at, REQUEST_MAX_AGE, self._clock())
            case EnrollRequest():
                if self._token_key is None:
                    raise ProofError("self-enrollment is off at this central (no enrollment token)")
                verify(msg, self._token_key, Signer.ENROLLING)
                check_fresh(msg.sent_at, REQUEST_MAX_AGE, self._clock())
            case _:
                raise ProofError(f"{msg.TYPE.value} is not accepted from Kafka here")

    def _cp_proof(self, msg: Message, cp_id: str) -> None:
        key = self._keys.cp_key(cp_id)
        if key is None:
            raise ProofError(f"{cp_id} has no record key (unknown, or not authenticated yet)")
        verify(msg, key, Signer.CP)

    def _driver_proof(self, msg: Message, driver_id: str) -> None:
        key = self._keys.driver_request_key(driver_id)
        if key is None:
            raise ProofError(f"driver {driver_id} is not enrolled")
        verify(msg, key, Signer.DRIVER)

    # --- refusals ----------------------------------------------------------------------

    def _refused(self, msg: Message, exc: ProofError | ImplausibleRecord) -> None:
        self._metrics.refused_records.labels(msg.TYPE.value, exc.code).inc()
        cp_id = getattr(msg, "cp_id", None)
        claimed = getattr(msg, "requester_id", None) or getattr(msg, "driver_id", None)
        more = self._quiet(msg.TYPE.value, exc.code, claimed or cp_id or "")
        if more is None:
            return  # counted; a flood is journaled (and told) once per quiet period
        if isinstance(msg, SupplyRequest) and msg.origin is Origin.DRIVER:
            self._tell_driver(msg, exc)
        self._journal.record(
            LogKind.REFUSED,
            f"{msg.TYPE.value} refused ({exc.code}): {exc.message}{more}",
            cp_id=cp_id,
            driver_id=claimed,
            session_id=getattr(msg, "session_id", None),
            level=logging.WARNING,
        )

    def _quiet(self, kind: str, code: str, claimed: str) -> str | None:
        """None while this kind of refusal was journaled within the quiet period, else
        the note on how many were only counted since the last line."""
        key = (kind, code, claimed)
        now = self._monotonic()
        last = self._journaled.get(key)
        if last is not None and now - last[0] < _JOURNAL_QUIET_S:
            self._journaled[key] = (last[0], last[1] + 1)
            return None
        if len(self._journaled) >= _JOURNAL_TRACKED:
            self._journaled.clear()
        self._journaled[key] = (now, 0)
        return f" (+{last[1]} more since the last line)" if last and last[1] else ""

    def _tell_driver(self, msg: SupplyRequest, exc: ProofError | ImplausibleRecord) -> None:
        """The real driver (if enrolled) learns that a request in its name was refused;
        the answer is sealed for it, so whoever sent the request reads nothing."""
        if self._keys.driver_key(msg.requester_id) is None:
            return
        log.info("telling the named driver %s", kv(driver=msg.requester_id, req=msg.request_id))
        self._outbox.response(
            SupplyResponse(
                request_id=msg.request_id,
                requester_id=msg.requester_id,
                origin=Origin.DRIVER,
                authorized=False,
                cp_id=msg.cp_id,
                reason=f"request refused: {exc.message}",
                sent_at=self._clock(),
            )
        )
