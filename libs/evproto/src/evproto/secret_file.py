"""A secret kept in a file of its own (mode 0600), written atomically.

The monitor keeps its CP secret this way, the driver its driver secret: a
hex string, read back with a bound on the file size, a warning when others
can read the file, a :class:`ConfigError` a person can act on otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from pathlib import Path

from evproto.errors import ConfigError
from evproto.logs import kv

__all__ = ["SecretFile", "write_atomically"]

log = logging.getLogger("evproto.secret_file")
_SECRET = re.compile(r"(?:[0-9a-f]{2}){8,64}")
_MAX_FILE_BYTES = 1024


class SecretFile:
    def __init__(self, path: Path, *, what: str, remedy: str) -> None:
        self.path = path
        self._what = what  # "CP secret", "driver secret"
        self._remedy = remedy  # what to do when the file is unusable

    def load(self) -> str | None:
        """The stored secret, None when there is none; a ConfigError for an unusable file."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(_MAX_FILE_BYTES + 1)
            mode = os.stat(self.path).st_mode
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read the {self._what} {self.path}: {exc.strerror}") from None
        text = raw.decode("ascii", errors="replace").strip()
        if len(raw) > _MAX_FILE_BYTES or not _SECRET.fullmatch(text):
            raise ConfigError(
                f"{self.path} does not hold a {self._what} (hex digits); {self._remedy}"
            )
        if mode & 0o077:
            log.warning("secret file readable by others %s", kv(path=self.path, mode=oct(mode)))
        return text

    def save(self, secret: str) -> None:
        """Write atomically with mode 0600: a crash leaves the old file or the new one."""
        directory = self.path.parent
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{self.path.name}.", suffix=".tmp")
        except OSError as exc:
            raise ConfigError(f"cannot store the {self._what} in {directory}: {exc}") from None
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:  # mkstemp made it 0600
                fh.write(secret + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise ConfigError(f"cannot store the {self._what} in {self.path}: {exc}") from None
        _fsync_directory(directory)


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600: a crash leaves the old file or the
    new one (temporary file, fsync, rename). OSError when the disk refuses."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:  # mkstemp made it 0600
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_directory(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every filesystem allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
