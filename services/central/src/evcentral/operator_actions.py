"""What an operator can do: STOP / RESUME one CP or all, set a CP's price, reset a CP's
credentials (so that the registration token can enroll it again)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from evproto.messages import DirectiveAction

from evcentral.core import Core
from evcentral.journal import LogKind
from evcentral.registry import ChargingPoint
from evcentral.sessions import Causes, SessionManager

__all__ = ["OperatorActions"]


class OperatorActions:
    def __init__(
        self,
        core: Core,
        sessions: SessionManager,
        push_price: Callable[[ChargingPoint], None],
        disconnect: Callable[[ChargingPoint, str], None],
    ) -> None:
        self._db = core.db
        self._registry = core.registry
        self._outbox = core.outbox
        self._journal = core.journal
        self._sessions = sessions
        self._push_price = push_price
        self._disconnect = disconnect

    def stop(self, cp: ChargingPoint) -> None:
        self._apply([cp], stop=True)
        self._journal.record(LogKind.DIRECTIVE, f"STOP sent to {cp.cp_id}", cp_id=cp.cp_id)

    def resume(self, cp: ChargingPoint) -> None:
        self._apply([cp], stop=False)
        self._journal.record(LogKind.DIRECTIVE, f"RESUME sent to {cp.cp_id}", cp_id=cp.cp_id)

    def stop_all(self) -> int:
        return self._all(stop=True)

    def resume_all(self) -> int:
        return self._all(stop=False)

    def _all(self, *, stop: bool) -> int:
        cps = list(self._registry)
        self._apply(cps, stop=stop)
        word = "STOP" if stop else "RESUME"
        self._journal.record(LogKind.DIRECTIVE, f"{word} sent to all {len(cps)} charging points")
        return len(cps)

    def _apply(self, cps: list[ChargingPoint], *, stop: bool) -> None:
        """The flag and its directives in one transaction, the directives kept: the HTTP
        call's 202 means the engines get them, even if the central is killed before the
        broker had them (sent again at the next start). Memory follows the commit."""
        action = DirectiveAction.STOP if stop else DirectiveAction.RESUME
        reason = Causes.OPERATOR_STOP.reason if stop else "resumed by the operator"
        with self._outbox.kept():
            self._db.set_out_of_service([cp.cp_id for cp in cps], stop)
            for cp in cps:
                self._outbox.directive(cp.cp_id, action, reason=reason)
        for cp in cps:
            cp.out_of_service = stop
            self._registry.refresh(cp)
            if stop:  # a running supply ends: the engine's aborted ticket, or the grace rule
                self._sessions.cp_fault(cp, Causes.OPERATOR_STOP)

    def set_price(self, cp: ChargingPoint, price: float) -> None:
        self._db.set_price(cp.cp_id, price)
        cp.price = price
        self._registry.refresh(cp)
        self._push_price(cp)
        self._journal.record(
            LogKind.DIRECTIVE, f"price of {cp.cp_id} set to {price:.4g} €/kWh", cp_id=cp.cp_id
        )

    def reset(self, cp: ChargingPoint) -> None:
        """Forget the CP's key and drop its link: its monitor (or a replacement that
        lost the secret) registers again with the registration token, and gets a new
        secret. Price, location and out-of-service stay."""
        self._db.reset_credentials(cp.cp_id)
        cp.stored_key = ""
        cp.record_key = ""  # its reports are refused until it registers again
        self._disconnect(cp, "credentials reset by the operator")
        self._journal.record(
            LogKind.SECURITY,
            f"credentials of {cp.cp_id} reset by the operator: the next registration "
            "with the token enrolls it",
            cp_id=cp.cp_id,
            level=logging.WARNING,
        )
