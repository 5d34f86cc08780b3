"""The central's HTTP API as an operator's script uses it: /api/cps, /api/sessions,
operator actions with the bearer token, /metrics, /readyz.

Connection failures raise ``OSError`` (``wait_until`` treats them as "not
yet"); HTTP errors are answers, returned with their status.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Answer", "CentralApi", "Metrics"]

_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any


class Metrics:
    """Samples of one /metrics scrape, by sample name (``..._total`` included)."""

    def __init__(self, text: str) -> None:
        self._samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self._samples[sample.name].append((dict(sample.labels), sample.value))

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels``."""
        return sum(
            value
            for sample_labels, value in self._samples.get(name, [])
            if all(sample_labels.get(k) == v for k, v in labels.items())
        )

    def __contains__(self, name: str) -> bool:
        return name in self._samples


class CentralApi:
    def __init__(self, base_url: str, operator_token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.operator_token = operator_token

    def request(
        self, method: str, path: str, body: object = None, *, token: str | None = None
    ) -> Answer:
        """One request; ``token`` None sends the operator token, "" sends none."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        bearer = self.operator_token if token is None else token
        if bearer:
            req.add_header("Authorization", f"Bearer {bearer}")
        try:
            with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
                return Answer(resp.status, _decode(resp.read(), resp.headers.get_content_type()))
        except urllib.error.HTTPError as err:
            return Answer(err.code, _decode(err.read(), err.headers.get_content_type()))

    def _get(self, path: str) -> Any:
        answer = self.request("GET", path)
        if answer.status != 200:
            raise AssertionError(f"GET {path} answered {answer.status}: {answer.body}")
        return answer.body

    # --- reading ------------------------------------------------------------------

    def cps(self) -> dict[str, dict[str, Any]]:
        return {cp["cp_id"]: cp for cp in self._get("/api/cps")["cps"]}

    def cp(self, cp_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self._get(f"/api/cps/{urllib.parse.quote(cp_id)}")
        return body

    def sessions(self, **query: str | int) -> list[dict[str, Any]]:
        query.setdefault("limit", 1000)
        sessions: list[dict[str, Any]] = self._get(
            "/api/sessions?" + urllib.parse.urlencode(query)
        )["sessions"]
        return sessions

    def metrics(self) -> Metrics:
        answer = self.request("GET", "/metrics")
        assert answer.status == 200, f"/metrics answered {answer.status}"
        return Metrics(str(answer.body))

    def readyz(self) -> Answer:
        return self.request("GET", "/readyz")

    # --- operator actions -----------------------------------------------------------

    def stop(self, cp_id: str | None = None, *, token: str | None = None) -> Answer:
        path = "/api/cps/stop" if cp_id is None else f"/api/cps/{cp_id}/stop"
        return self.request("POST", path, token=token)

    def resume(self, cp_id: str | None = None, *, token: str | None = None) -> Answer:
        path = "/api/cps/resume" if cp_id is None else f"/api/cps/{cp_id}/resume"
        return self.request("POST", path, token=token)

    def set_price(self, cp_id: str, price: float, *, token: str | None = None) -> Answer:
        return self.request("PUT", f"/api/cps/{cp_id}/price", {"price": price}, token=token)


def _decode(raw: bytes, content_type: str) -> Any:
    text = raw.decode("utf-8", "replace")
    if content_type == "application/json":
        return json.loads(text)
    return text
