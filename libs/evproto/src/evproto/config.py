"""Settings from flags > ``EV_…`` environment variables > a YAML file > defaults.

A service declares its settings as a frozen dataclass whose fields are made
with :func:`setting`; :func:`build_parser` turns it into an ``argparse`` parser
(``--help`` documents every flag with its variable and default) and
:func:`load_settings` resolves the layers, failing fast with a
:class:`ConfigError` that names the offending source.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from evproto.errors import ConfigError

__all__ = ["build_parser", "load_settings", "parse_hostport", "setting"]

S = TypeVar("S")
_MAX_CONFIG_BYTES = 1024 * 1024


def setting(default: Any, *, help: str, secret: bool = False, metavar: str | None = None) -> Any:
    """A settings field. ``secret`` ones also read ``--NAME-file`` / ``EV_NAME_FILE``."""
    return dataclasses.field(
        default=default, metadata={"help": help, "secret": secret, "metavar": metavar}
    )


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _env(name: str) -> str:
    return "EV_" + name.upper()


def build_parser(cls: type[Any], prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every flag can also be set with the environment variable shown, or as the "
        "same name (with underscores) in the YAML file given by --config / EV_CONFIG. "
        "Flags win over variables, variables over the file.",
    )
    parser.add_argument(
        "--config", metavar="FILE", default=None, help="YAML settings file [env EV_CONFIG]"
    )
    for f in dataclasses.fields(cls):
        meta = f.metadata
        hint = _base_type(typing.get_type_hints(cls)[f.name])
        kwargs: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "help": f"{meta['help']} [env {_env(f.name)}] (default: {f.default!r})".replace(
                "%", "%%"
            ),
        }
        if hint is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["metavar"] = meta.get("metavar") or f.name.upper()
        parser.add_argument(_flag(f.name), **kwargs)
        if meta.get("secret"):
            parser.add_argument(
                _flag(f.name) + "-file",
                dest=f.name + "_file",
                metavar="FILE",
                default=None,
                help=f"read {f.name} from this file [env {_env(f.name)}_FILE]",
            )
    return parser


def load_settings(
    cls: type[S],
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
) -> S:
    """Resolve every field of ``cls`` from the parsed flags, the environment and the file."""
    env = os.environ if environ is None else environ
    config_path = getattr(args, "config", None) or env.get("EV_CONFIG")
    from_file = _read_yaml(config_path) if config_path else {}
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(from_file) - known
    if unknown:
        raise ConfigError(
            f"{config_path}: unknown setting(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(known))}"
        )
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        raw, source = _pick(f, args, env, from_file)
        if raw is None:
            continue
        values[f.name] = _convert(raw, hints[f.name], f.name, source)
    return cls(**values)


def _pick(
    f: dataclasses.Field[Any],
    args: argparse.Namespace,
    env: Mapping[str, str],
    from_file: Mapping[str, Any],
) -> tuple[Any, str]:
    flag_value = getattr(args, f.name, None)
    if flag_value is not None:
        return flag_value, _flag(f.name)
    if f.metadata.get("secret"):
        file_flag = getattr(args, f.name + "_file", None)
        file_env = env.get(_env(f.name) + "_FILE")
        path, source = (
            (file_flag, _flag(f.name) + "-file")
            if file_flag
            else (
                file_env,
                _env(f.name) + "_FILE",
            )
        )
        if path:
            try:
                return Path(path).read_text(encoding="utf-8").strip(), source
            except OSError as exc:
                raise ConfigError(f"{source}: cannot read {path}: {exc.strerror}") from None
    if _env(f.name) in env:
        return env[_env(f.name)], _env(f.name)
    if f.name in from_file:
        return from_file[f.name], f"config file key {f.name!r}"
    return None, "default"


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(_MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    if len(raw) > _MAX_CONFIG_BYTES:
        raise ConfigError(f"config file {path} is larger than {_MAX_CONFIG_BYTES} bytes")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if data is None:  # an empty file
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of setting: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def _base_type(hint: Any) -> Any:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0]
    return hint


def _convert(raw: Any, hint: Any, name: str, source: str) -> Any:
    target = _base_type(hint)
    try:
        if target is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true or false")
        if target is int:
            # int(2.5) would silently truncate a YAML float
            if isinstance(raw, bool) or (isinstance(raw, float) and not raw.is_integer()):
                raise ValueError("expected a whole number")
            return int(raw)
        if target is float:
            if isinstance(raw, bool):
                raise ValueError("expected a number")
            number = float(raw)
            if not math.isfinite(number):
                raise ValueError("expected a finite number")
            return number
        if target is Path:
            return Path(str(raw))
        if target is str:
            if isinstance(raw, dict | list):
                raise ValueError("expected a single value")
            return str(raw)
    except ValueError as exc:
        raise ConfigError(f"{source}: invalid value {raw!r} for {name}: {exc}") from None
    raise TypeError(f"setting {name}: unsupported type {hint!r}")


def parse_hostport(value: str, *, what: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``HOST:PORT`` (or ``:PORT``, or ``[v6]:PORT``) -> (host, port), or a ConfigError."""
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise ConfigError(f"{what}: {value!r} is not HOST:PORT")
    host = host.strip("[]") or default_host
    if not (port_text.isascii() and port_text.isdigit()):  # int() also takes "+8_0"
        raise ConfigError(f"{what}: port {port_text!r} is not a number")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ConfigError(f"{what}: port {port} is out of range 0-65535")
    return host, port
