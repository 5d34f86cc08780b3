"""The central's HTTP API over the standard library: one request, a timeout and a
bounded answer; every failure becomes an evproto error that says what to do."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from evproto.errors import AuthError, ConfigError, EvError

from evcentral.ctl.config import Target

__all__ = ["Central"]

_TIMEOUT_S = 15.0
_MAX_ANSWER = 64 * 1024 * 1024  # a 100,000-row CSV export is ~20 MB


class Central:
    def __init__(self, target: Target, timeout: float = _TIMEOUT_S) -> None:
        self.target = target
        self.timeout = timeout

    def get(self, path: str, query: Mapping[str, str | None] | None = None) -> Any:
        return json.loads(self.call("GET", path, query=query))

    def send(self, method: str, path: str, body: Any = None) -> Any:
        return json.loads(self.call(method, path, body=body))

    def call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | None] | None = None,
        body: Any = None,
    ) -> bytes:
        url = self.target.url + path
        params = {k: v for k, v in (query or {}).items() if v not in (None, "")}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Authorization": f"Bearer {self.target.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                text: bytes = answer.read(_MAX_ANSWER + 1)
        except urllib.error.HTTPError as exc:
            raise _refused(exc) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EvError(f"cannot reach the central at {self.target.url}: {reason}") from None
        if len(text) > _MAX_ANSWER:
            raise EvError(f"the answer to {path} is larger than {_MAX_ANSWER} bytes; narrow it")
        return text


def _refused(exc: urllib.error.HTTPError) -> EvError:
    try:
        message = json.loads(exc.read(64 * 1024)).get("error") or exc.reason
    except (ValueError, AttributeError, OSError):
        message = exc.reason
    if exc.code == 401:
        return AuthError(f"the central refused the token: {message}; run evctl login again")
    if exc.code == 403:
        return AuthError(f"not allowed with this token: {message} (an operator token is needed)")
    if exc.code == 400:
        return ConfigError(f"the central says: {message}")
    return EvError(f"the central answered {exc.code}: {message}")
