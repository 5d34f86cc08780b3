"""The monitor port's TLS certificate, read again when its files change.

cert-manager renews the certificate in its Secret, and Kubernetes swaps the
mounted files; new connections get the new certificate without a restart
(links already open keep theirs). A file that cannot be read, or a key that does
not match, leaves the certificate in use and is logged.
"""

from __future__ import annotations

import logging
import os
import ssl

from evproto.logs import kv

__all__ = ["ServerCertificate"]

log = logging.getLogger("evcentral.tls")


class ServerCertificate:
    def __init__(self, cert_file: str, key_file: str) -> None:
        self._cert_file = cert_file
        self._key_file = key_file
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert_file, key_file)
        self._stamp = self._files_stamp()

    def _files_stamp(self) -> tuple[float, ...]:
        stats = (os.stat(path) for path in (self._cert_file, self._key_file))
        return tuple(value for st in stats for value in (st.st_mtime, st.st_ino, st.st_size))

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed since the last load; True if loaded."""
        try:
            stamp = self._files_stamp()
            if stamp == self._stamp:
                return False
            self.context.load_cert_chain(self._cert_file, self._key_file)
        except (OSError, ssl.SSLError) as exc:
            log.warning("tls certificate not reloaded %s", kv(cert=self._cert_file, error=exc))
            return False
        self._stamp = stamp
        log.info("tls certificate reloaded %s", kv(cert=self._cert_file))
        return True
