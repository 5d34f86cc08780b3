"""The CP's record key on the engine: proves what it reports, checks what the central commands.

The monitor derives the key from the CP secret and tells it over their local
link (``RecordKey``); the engine never holds the secret. Until the key is
known the engine's reports go out unproven (the central refuses them) and no
directive is obeyed. A directive is obeyed only when proven by the central
and not older than ``evproto.proofs.DIRECTIVE_MAX_AGE``, so a START replayed after a restart
does nothing (within the bound the machine's directive ids are remembered).
"""

from __future__ import annotations

import logging

from evproto.errors import ProofError
from evproto.logs import kv
from evproto.messages import Directive, SupplyResponse
from evproto.proofs import Signer, check_from_central, key_from_hex, prove
from evproto.schema import Message

__all__ = ["RecordKey"]

log = logging.getLogger("evengine.proofs")


class RecordKey:
    def __init__(self, cp_id: str) -> None:
        self._cp_id = cp_id
        self._key: bytes | None = None

    @property
    def known(self) -> bool:
        return self._key is not None

    def set(self, key_hex: str) -> None:
        """The key from the monitor; a malformed one is refused with ValueError."""
        key = key_from_hex(key_hex)
        if key != self._key:
            log.info("record key received %s", kv(cp=self._cp_id))
        self._key = key

    def prove(self, msg: Message) -> Message:
        if self._key is None:
            log.warning(
                "no record key yet: sent unproven %s", kv(cp=self._cp_id, type=msg.TYPE.value)
            )
            return msg
        return prove(msg, self._key, Signer.CP)

    def check(self, msg: Directive | SupplyResponse, now: float) -> None:
        """Raise :class:`ProofError` unless the central proved ``msg`` (and it is fresh)."""
        if self._key is None:
            raise ProofError("no record key from the monitor yet: cannot check the central")
        check_from_central(msg, self._key, msg.sent_at, now)
