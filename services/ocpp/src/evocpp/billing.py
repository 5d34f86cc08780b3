"""What the engine would report for a station's transaction, from its energy register.

``SupplyStarted`` when it is bound to its session, a ``Telemetry`` per meter
reading (``seq`` one more, kWh from the meter start, € = kWh × the session's
price) and one ``Ticket`` at the end with exactly the last telemetry's figures
(a final reading first when the stop's register is higher). The transaction is
kept in ``gateway.db``, so its end is billed once whenever and however often the
station sends it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from evproto.logs import kv
from evproto.messages import Outcome, SupplyStarted, Telemetry, Ticket
from evproto.schema import Message

from evocpp.connector import StopCause
from evocpp.store import Store, TransactionRecord

__all__ = ["COMPLETED_REASONS", "Billing", "EndResult"]

log = logging.getLogger("evocpp.billing")

# Station stop reasons that mean the supply ended normally (both versions' spelling).
COMPLETED_REASONS = frozenset({"Local", "EVDisconnected", "Remote", "DeAuthorized", "StoppedByEV"})
_MAX_POWER_KW = 1000.0
EndResult = str  # "ticket", "duplicate" (ended before) or "unknown" (never bound)


class Billing:
    def __init__(
        self, store: Store, publish: Callable[[str, Message], None], clock: Callable[[], float]
    ) -> None:
        self._store = store
        self._publish = publish
        self._clock = clock

    def open(self, tx: TransactionRecord) -> None:
        self._store.open_transaction(tx)
        self._publish(
            tx.cp_id,
            SupplyStarted(session_id=tx.session_id, cp_id=tx.cp_id, driver_id=tx.driver_id,
                          sent_at=tx.started_at),
        )  # fmt: skip
        log.info("transaction started %s", kv(cp=tx.cp_id, tx=tx.tx_id, session=tx.session_id))

    def report(
        self, tx: TransactionRecord, energy_wh: float, power_w: float | None
    ) -> tuple[float, float]:
        """The next telemetry at this register reading; (kWh so far, seconds elapsed)."""
        now = self._clock()
        kwh = round(max(0.0, (energy_wh - tx.meter_start_wh) / 1000), 6)
        kwh = max(kwh, tx.last_kwh)  # a register never runs backwards
        elapsed = max(0.0, now - tx.started_at)
        if power_w is not None:
            power_kw = power_w / 1000
        else:
            power_kw = kwh / (elapsed / 3600) if elapsed > 0 else 0.0
        seq = tx.last_seq + 1
        self._store.record_telemetry(tx.tx_id, seq, kwh)
        self._publish(
            tx.cp_id,
            Telemetry(
                session_id=tx.session_id, cp_id=tx.cp_id, driver_id=tx.driver_id, seq=seq,
                kwh=kwh, eur=round(kwh * tx.price, 6),
                power_kw=round(min(max(power_kw, 0.0), _MAX_POWER_KW), 3),
                elapsed_s=round(elapsed, 3), sent_at=now,
            ),
        )  # fmt: skip
        return kwh, elapsed

    def close(
        self, tx_id: str, meter_wh: float | None, cause: StopCause | None, station_reason: str
    ) -> EndResult:
        """The ticket, once. ``cause``: why the gateway asked for the stop, if it did."""
        tx = self._store.transaction(tx_id)
        if tx is None:
            return "unknown"
        if not self._store.end_transaction(tx_id):
            return "duplicate"  # a StopTransaction sent again: billed once already
        if cause is None:
            completed = station_reason in COMPLETED_REASONS
            cause = StopCause(
                Outcome.COMPLETED if completed else Outcome.ABORTED,
                f"ended at the station ({station_reason})",
            )
        if meter_wh is not None and round((meter_wh - tx.meter_start_wh) / 1000, 6) > tx.last_kwh:
            self.report(tx, meter_wh, None)
            tx = self._store.transaction(tx_id) or tx
        self._publish(
            tx.cp_id,
            Ticket(
                session_id=tx.session_id, cp_id=tx.cp_id, driver_id=tx.driver_id,
                last_seq=tx.last_seq, kwh=tx.last_kwh, eur=round(tx.last_kwh * tx.price, 6),
                price=tx.price, started_at=tx.started_at, ended_at=self._clock(),
                outcome=cause.outcome, reason=cause.reason,
            ),
        )  # fmt: skip
        fields = kv(cp=tx.cp_id, tx=tx_id, session=tx.session_id, kwh=tx.last_kwh,
                    outcome=cause.outcome.value)  # fmt: skip
        log.info("transaction ended %s", fields)
        return "ticket"
