"""Who is calling the HTTP API: the operator, a viewer, or nobody (docs/interfaces.md).

Reads need the viewer token or the operator token, actions the operator token.
A viewer sees every driver id as a stable pseudonym, a keyed HMAC of the id
under a key derived from the operator token: the same driver has the same
pseudonym in every view, and nobody without the operator token can tell
which driver it is, nor test a guess.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from dataclasses import replace
from typing import Any

from evcentral.journal import LogEntry

__all__ = ["Access", "Role", "TokenProblem"]

_PSEUDONYM_PREFIX = "driver-"
_PSEUDONYM_HEX = 12  # 48 bits: no collisions to expect among millions of drivers


class Role(enum.Enum):
    OPERATOR = "operator"
    VIEWER = "viewer"


class TokenProblem(enum.Enum):
    MISSING = "missing"
    WRONG = "wrong"


class Access:
    def __init__(self, operator_token: str, viewer_token: str) -> None:
        self._operator = operator_token.encode()
        self._viewer = viewer_token.encode()
        self._key = hashlib.sha256(b"evcentral driver pseudonym\0" + self._operator).digest()

    def role_of(self, authorization: str) -> Role | TokenProblem:
        """The role an ``Authorization`` header proves, or what is wrong with it."""
        if not authorization.isascii():
            return TokenProblem.WRONG
        scheme, _, token = authorization.partition(" ")
        presented = token.strip().encode()
        if scheme.lower() != "bearer" or not presented:
            return TokenProblem.MISSING
        # compare with both, always: the time taken says nothing about which one matched
        operator = hmac.compare_digest(presented, self._operator)
        viewer = hmac.compare_digest(presented, self._viewer)
        if operator:
            return Role.OPERATOR
        return Role.VIEWER if viewer else TokenProblem.WRONG

    def pseudonym(self, driver_id: str) -> str:
        digest = hmac.new(self._key, driver_id.encode(), hashlib.sha256).hexdigest()
        return _PSEUDONYM_PREFIX + digest[:_PSEUDONYM_HEX]

    def redact(self, view: dict[str, Any]) -> dict[str, Any]:
        """A CP or session view with its driver id replaced by the pseudonym."""
        driver_id = view.get("driver_id")
        if not driver_id:
            return view
        return {**view, "driver_id": self.pseudonym(driver_id)}

    def redact_entry(self, entry: LogEntry) -> LogEntry:
        """A journal entry without the driver id, in its field and in its text."""
        if not entry.driver_id:
            return entry
        alias = self.pseudonym(entry.driver_id)
        return replace(
            entry, driver_id=alias, message=entry.message.replace(entry.driver_id, alias)
        )
