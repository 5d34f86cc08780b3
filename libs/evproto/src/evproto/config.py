"""Settings from flags > ``EV_…`` environment variables > a YAML file > defaults.

A service declares its settings as a frozen dataclass extending
:class:`ServiceSettings` (the flags every command has), whose fields are made with
:func:`setting` or its shorthands :func:`seconds`, :func:`count`,
:func:`identifier` and :func:`address`: each field declares its bounds once, as a
message field does with ``evproto.schema.number()``. :func:`build_parser` turns
the class into an ``argparse`` parser (``--help`` documents every flag with its
variable, bounds and default; a usage error is one line) and
:func:`load_settings` resolves the layers and checks the bounds, failing fast
with a :class:`ConfigError` that names the offending flag, variable or file key.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from evproto.errors import ConfigError
from evproto.schema import ID_PATTERN, ID_RULE

__all__ = [
    "LOG_LEVELS",
    "ServiceSettings",
    "SettingsParser",
    "address",
    "build_parser",
    "count",
    "identifier",
    "load_settings",
    "parse_hostport",
    "seconds",
    "setting",
]

S = TypeVar("S")
_MAX_CONFIG_BYTES = 1024 * 1024
_INT_LIMIT = 2**63  # YAML happily reads a 400-digit integer
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def setting(
    default: Any,
    *,
    help: str,
    secret: bool = False,
    metavar: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    above: float | None = None,
    pattern: str | re.Pattern[str] | None = None,
    pattern_help: str | None = None,
    choices: Sequence[str] = (),
    address: bool = False,
) -> Any:
    """A settings field, with its bounds declared once (checked at load, shown by ``--help``).

    ``minimum``/``maximum`` are inclusive, ``above`` exclusive; ``pattern`` is a full
    match described by ``pattern_help``; ``choices`` are case-insensitive;
    ``address`` is ``HOST:PORT`` (empty allowed when the default is empty).
    ``secret`` ones also read ``--NAME-file`` / ``EV_NAME_FILE``.
    """
    bounds = _Bounds(
        minimum=minimum,
        maximum=maximum,
        above=above,
        pattern=re.compile(pattern) if pattern is not None else None,
        pattern_help=pattern_help or (f"a match for {pattern}" if pattern is not None else ""),
        choices=tuple(choices),
        address=address,
    )
    return dataclasses.field(
        default=default,
        metadata={"help": help, "secret": secret, "metavar": metavar, "bounds": bounds},
    )


def seconds(default: float, help: str, *, maximum: float = 3600, zero_ok: bool = False) -> Any:
    """A duration in seconds: above 0 (or from 0 with ``zero_ok``) up to ``maximum``."""
    if zero_ok:
        return setting(default, help=help, metavar="S", minimum=0, maximum=maximum)
    return setting(default, help=help, metavar="S", above=0, maximum=maximum)


def count(default: int, help: str, *, minimum: int = 1, maximum: int | None = None) -> Any:
    """A whole number of things: at least ``minimum`` (1), at most ``maximum``."""
    return setting(default, help=help, metavar="N", minimum=minimum, maximum=maximum)


def identifier(default: str, help: str) -> Any:
    """An id with the messages' rule (``evproto.schema.ident``), e.g. a CP id."""
    return setting(
        default, help=help, metavar="ID", pattern=ID_PATTERN, pattern_help=f"a valid id ({ID_RULE})"
    )


def address(default: str, help: str) -> Any:
    """A ``HOST:PORT`` (empty allowed when the default is empty: the feature is off)."""
    return setting(default, help=help, metavar="HOST:PORT", address=True)


@dataclasses.dataclass(frozen=True, slots=True)
class _Bounds:
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None
    pattern: re.Pattern[str] | None = None
    pattern_help: str = ""
    choices: tuple[str, ...] = ()
    address: bool = False

    def describe(self) -> str:
        """The bounds as ``--help`` shows them, e.g. ``> 0``, ``0-100``."""
        parts = []
        low = f"> {self.above:g}" if self.above is not None else None
        if self.minimum is not None and self.maximum is not None:
            parts.append(f"{self.minimum:g}-{self.maximum:g}")
        elif self.minimum is not None:
            parts.append(f">= {self.minimum:g}")
        elif self.maximum is not None:
            parts.append(f"{low} and <= {self.maximum:g}" if low else f"<= {self.maximum:g}")
            low = None
        if low:
            parts.append(low)
        if self.pattern is not None:
            parts.append(self.pattern_help)
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        if self.address:
            parts.append("HOST:PORT")
        return "; ".join(parts)

    def check(self, value: Any, default: Any) -> str | None:
        """What is wrong with ``value`` (a phrase that starts with it), or None."""
        shown = repr(value)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.minimum is not None and value < self.minimum:
                return f"{shown} must be at least {self.minimum:g}"
            if self.maximum is not None and value > self.maximum:
                return f"{shown} must be at most {self.maximum:g}"
            if self.above is not None and not value > self.above:
                return f"{shown} must be more than {self.above:g}"
        if isinstance(value, str):
            if self.pattern is not None and not self.pattern.fullmatch(value):
                return f"{shown} is not {self.pattern_help}"
            if self.choices and value.upper() not in {c.upper() for c in self.choices}:
                return f"{shown} is not one of " + ", ".join(self.choices)
            if self.address and (value or default):
                try:
                    parse_hostport(value, what="value")
                except ConfigError as exc:
                    return exc.message.removeprefix("value: ")
        return None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _env(name: str) -> str:
    return "EV_" + name.upper()


class SettingsParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line on stderr and exit 2."""

    def error(self, message: str) -> typing.NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        sys.exit(2)


def build_parser(cls: type[Any], prog: str, description: str) -> argparse.ArgumentParser:
    parser = SettingsParser(
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
        hint = _base_type(_type_hints(cls)[f.name])
        bounds = meta.get("bounds")
        shown = f" ({bounds.describe()})" if bounds is not None and bounds.describe() else ""
        kwargs: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "help": f"{meta['help']}{shown} [env {_env(f.name)}] (default: {f.default!r})".replace(
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
    hints = _type_hints(cls)
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
        value = _convert(raw, hints[f.name], f.name, source)
        bounds = f.metadata.get("bounds")
        problem = bounds.check(value, f.default) if bounds is not None else None
        if problem is not None:
            raise ConfigError(f"{source}: {problem}")
        values[f.name] = value
    return cls(**values)


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _type_hints(cls: type[Any]) -> dict[str, Any]:
    """Cached: resolving the annotations was most of a small load_settings call."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


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
        where = " ".join(str(exc).split())  # PyYAML's message spans lines
        raise ConfigError(f"config file {path} is not valid YAML: {where}") from None
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
            whole = int(raw)
            if not -_INT_LIMIT < whole < _INT_LIMIT:
                raise ValueError("out of range")
            return whole
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
    except (ValueError, OverflowError, TypeError) as exc:
        shown = repr(raw) if len(repr(raw)) <= 40 else repr(raw)[:37] + "..."
        raise ConfigError(f"{source}: invalid value {shown} for {name}: {exc}") from None
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


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    """The settings every service has; a service's settings dataclass extends it."""

    log_level: str = setting(
        "INFO", help="the least severe log events written", metavar="LEVEL", choices=LOG_LEVELS
    )
    log_format: str = setting(
        "text",
        help="text: one line per event with key=value ids; json: one JSON object per line",
        metavar="FORMAT",
        choices=("text", "json"),
    )
    metrics: str = address("", "serve /metrics on HOST:PORT; empty: off")
