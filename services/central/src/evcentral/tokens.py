"""Tokens the central makes itself when none is configured: kept in a 0600 file
beside its database, so they survive a restart and never appear in a log."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from evproto.errors import ConfigError

__all__ = ["kept_token"]

_MAX_TOKEN_BYTES = 1024


def kept_token(path: Path) -> tuple[str, bool]:
    """The token in ``path``, or a new one written there (mode 0600); True if new."""
    try:
        with open(path, "rb") as fh:
            text = fh.read(_MAX_TOKEN_BYTES).decode("ascii", "replace").strip()
        if text:
            return text, False
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from None
    token = secrets.token_urlsafe(24)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as fh:
            fh.write(token + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the token file {path}: {exc.strerror}") from None
    return token, True
