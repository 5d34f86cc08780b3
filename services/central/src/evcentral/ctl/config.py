"""Where evctl finds the central and the token: the environment, then the config file
that ``evctl login`` wrote (JSON, mode 0600, never the token on a command line)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from evproto.errors import ConfigError

__all__ = ["Target", "config_path", "load_target", "save_target"]

_URL_ENV, _TOKEN_ENV, _PATH_ENV = "EV_CENTRAL_URL", "EV_TOKEN", "EVCTL_CONFIG"
_TOKEN_FILE_ENV = "EV_TOKEN_FILE"
# Inside the central's pod (kubectl exec) the central's own token file is mounted and
# its HTTP port is local: evctl works there with no login at all.
_POD_TOKEN_FILE_ENV, _POD_URL = "EV_OPERATOR_TOKEN_FILE", "http://127.0.0.1:8080"


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # http(s)://host:port, no trailing slash
    token: str


def config_path() -> Path:
    """``$EVCTL_CONFIG``, else ``$XDG_CONFIG_HOME/evctl/config.json`` (``~/.config/…``)."""
    if explicit := os.environ.get(_PATH_ENV):
        return Path(explicit)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "evctl" / "config.json"


def normalise_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"the central's URL must start with http:// or https://, got {url!r}")
    return url


def load_target() -> Target:
    """The environment (``EV_CENTRAL_URL``, ``EV_TOKEN`` or ``EV_TOKEN_FILE``) wins over
    the login file; in the central's pod its mounted operator token is the fallback."""
    stored: dict[str, str] = {}
    path = config_path()
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {path}: {exc}; run evctl login again") from exc
        if isinstance(loaded, dict):
            stored = {k: v for k, v in loaded.items() if isinstance(v, str)}
    pod_token = _read_token(os.environ.get(_POD_TOKEN_FILE_ENV, ""))
    url = os.environ.get(_URL_ENV) or stored.get("url", "") or (_POD_URL if pod_token else "")
    token = (
        os.environ.get(_TOKEN_ENV)
        or _read_token(os.environ.get(_TOKEN_FILE_ENV, ""))
        or stored.get("token", "")
        or pod_token
    )
    if not url or not token:
        raise ConfigError(
            f"not logged in: run `evctl login --url URL` (or set {_URL_ENV} and {_TOKEN_ENV})"
        )
    return Target(normalise_url(url), token.strip())


def _read_token(path: str) -> str:
    if not path:
        return ""
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc.strerror}") from exc


def save_target(target: Target) -> Path:
    """Write the config file readable by its owner only (created 0600, never wider)."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        json.dump({"url": target.url, "token": target.token}, out)
        out.write("\n")
    return path
