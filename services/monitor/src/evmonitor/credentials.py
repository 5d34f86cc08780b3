"""The CP secret issued at registration, kept in ``<state-dir>/<cp-id>.secret`` (0600)."""

from __future__ import annotations

from pathlib import Path

from evproto.secret_file import SecretFile

__all__ = ["SecretStore"]


class SecretStore(SecretFile):
    def __init__(self, path: Path) -> None:
        super().__init__(
            path,
            what="CP secret",
            remedy="remove it and start with --registration-token to register the CP again",
        )
