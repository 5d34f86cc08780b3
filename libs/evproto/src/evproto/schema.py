"""Frames <-> messages: the base of every typed message and its validation.

A message is a frozen, slotted dataclass registered with :func:`message` under
a :class:`MsgType`. Input is validated once, where it enters a process
(:func:`decode_message`); everything inside handles typed objects.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
import types
import typing
import uuid
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from evproto.errors import InvalidField, MalformedMessage, UnknownMessageType

__all__ = [
    "ID_PATTERN",
    "ID_RULE",
    "SCHEMA_VERSION",
    "Message",
    "MsgType",
    "decode_message",
    "encode_message",
    "ident",
    "is_ident",
    "message",
    "new_id",
    "number",
    "text",
]

SCHEMA_VERSION = 1
# Whole numbers up to 2**53 survive every JSON peer (JavaScript, doubles) exactly.
_INT_MAX = 2**53
# Any float field without its own bound: far above every real time, amount or
# duration, and far below overflow (a sum of many stays finite).
_FLOAT_MAX = 1e12
# Lone surrogates cannot be encoded (SQLite, Kafka, logs fail on them); control
# characters and line/paragraph separators split log lines and dashboard rows.
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# \Z, not $: "$" would also match before a trailing newline.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,63}\Z")
ID_RULE = "1-64 letters, digits or ._:@-"


class MsgType(enum.StrEnum):
    # TCP, monitor <-> central
    AUTHENTICATE = "authenticate"
    CHALLENGE = "challenge"
    CHALLENGE_RESPONSE = "challenge_response"
    REGISTER = "register"
    AUTH_RESULT = "auth_result"
    STATUS = "status"
    PRICE_UPDATE = "price_update"
    # TCP, monitor <-> engine
    HEALTH_REQUEST = "health_request"
    HEALTH_ANSWER = "health_answer"
    INFO_REQUEST = "info_request"
    ENGINE_INFO = "engine_info"
    RECORD_KEY = "record_key"
    CENTRAL_UNREACHABLE = "central_unreachable"
    CENTRAL_RESTORED = "central_restored"
    ERROR = "error"
    # Kafka
    SUPPLY_REQUEST = "supply_request"
    SUPPLY_STOP = "supply_stop"
    SUPPLY_RESPONSE = "supply_response"
    DIRECTIVE = "directive"
    SUPPLY_STARTED = "supply_started"
    TELEMETRY = "telemetry"
    TICKET = "ticket"
    DRIVER_UPDATE = "driver_update"
    CP_STATE = "cp_state"
    DEAD_LETTER = "dead_letter"
    SEALED = "sealed"
    ENROLL_REQUEST = "enroll_request"
    ENROLL_RESPONSE = "enroll_response"


# --- field constraints, carried in dataclass field metadata -------------------

_REQUIRED: Any = dataclasses.MISSING


def _field(default: Any, meta: dict[str, Any]) -> Any:
    if default is _REQUIRED:
        return dataclasses.field(metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def ident(*, default: Any = _REQUIRED) -> Any:
    """An identifier (CP id, driver id, session id): 1-64 safe characters."""
    return _field(default, {"pattern": ID_PATTERN, "pattern_help": ID_RULE})


def is_ident(value: str) -> bool:
    """Whether ``value`` is a valid identifier (what :func:`ident` fields accept)."""
    return ID_PATTERN.match(value) is not None


def text(*, default: Any = _REQUIRED, max_len: int = 256, one_line: bool = True) -> Any:
    """Text of at most ``max_len`` characters; ``one_line`` refuses control characters."""
    return _field(
        default, {"max_len": max_len, "refused": _UNPRINTABLE if one_line else _SURROGATE}
    )


def number(
    *, default: Any = _REQUIRED, minimum: float | None = 0, maximum: float | None = None
) -> Any:
    return _field(default, {"minimum": minimum, "maximum": maximum})


# --- the base class and the registry ------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    TYPE: ClassVar[MsgType]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.TYPE.value, "v": SCHEMA_VERSION}
        for name in _field_names(type(self)):
            value = getattr(self, name)
            out[name] = value.value if isinstance(value, enum.Enum) else value
        return out

    @classmethod
    def from_dict(cls: type[M], data: dict[str, Any]) -> M:
        kind = data.get("type")
        if kind != cls.TYPE.value:
            raise InvalidField(cls.TYPE.value, "type", f"expected {cls.TYPE.value!r}, got {kind!r}")
        version = data.get("v", SCHEMA_VERSION)
        if type(version) is not int or version != SCHEMA_VERSION:  # true == 1 in Python
            raise InvalidField(
                cls.TYPE.value, "v", f"schema version {version!r} is not supported (want 1)"
            )
        kwargs = {name: check(data.get(name, _MISSING)) for name, check in _checkers(cls).items()}
        return cls(**{k: v for k, v in kwargs.items() if v is not _MISSING})


M = TypeVar("M", bound=Message)
_REGISTRY: dict[str, type[Message]] = {}
_FIELD_NAMES: dict[type[Message], tuple[str, ...]] = {}


def _field_names(cls: type[Message]) -> tuple[str, ...]:
    """Cached: ``dataclasses.fields`` is too slow for every encoded message."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_CHECKERS: dict[type[Message], dict[str, Callable[[Any], Any]]] = {}
_MISSING: Any = object()


@typing.dataclass_transform(
    frozen_default=True,
    kw_only_default=True,
    field_specifiers=(dataclasses.field, ident, text, number),
)
def message(kind: MsgType) -> Callable[[type[M]], type[M]]:
    """Class decorator: make a frozen slotted dataclass message and register it."""

    def wrap(cls: type[M]) -> type[M]:
        made = dataclasses.dataclass(frozen=True, slots=True, kw_only=True)(cls)
        made.TYPE = kind
        if kind.value in _REGISTRY:
            raise TypeError(f"message type {kind.value} registered twice")
        _REGISTRY[kind.value] = made
        return made

    return wrap


def message_class(kind: MsgType | str) -> type[Message]:
    try:
        return _REGISTRY[str(kind)]
    except KeyError:
        raise UnknownMessageType(f"unknown message type {kind!r}") from None


def encode_message(msg: Message) -> bytes:
    return json.dumps(msg.to_dict(), separators=(",", ":"), ensure_ascii=True).encode("ascii")


def decode_message(
    raw: bytes | str | dict[str, Any], accept: frozenset[MsgType] | None = None
) -> Message:
    """Validate raw input into a typed message, or raise a :class:`MessageError`."""
    if isinstance(raw, dict):
        data = raw
    else:
        try:
            # Decode explicitly: json.loads would also guess UTF-16/32 from bytes.
            data = json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise MalformedMessage(f"not UTF-8 JSON: {exc}") from None
        except RecursionError:
            raise MalformedMessage("not UTF-8 JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise MalformedMessage(f"expected a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    if not isinstance(kind, str):
        raise MalformedMessage("the JSON object has no string 'type'")
    cls = message_class(kind)
    if accept is not None and cls.TYPE not in accept:
        raise UnknownMessageType(f"message type {kind!r} is not accepted here")
    return cls.from_dict(data)


# --- validation built once per class from its type hints -----------------------


def _checkers(cls: type[Message]) -> dict[str, Callable[[Any], Any]]:
    cached = _CHECKERS.get(cls)
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = {
            f.name: _field_checker(cls.TYPE.value, f, hints[f.name])
            for f in dataclasses.fields(cls)
        }
        _CHECKERS[cls] = cached
    return cached


def _field_checker(kind: str, f: dataclasses.Field[Any], hint: Any) -> Callable[[Any], Any]:
    optional = False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = len(args) < len(typing.get_args(hint))
        hint = args[0]
    has_default = f.default is not dataclasses.MISSING
    meta = f.metadata

    def fail(problem: str) -> typing.NoReturn:
        raise InvalidField(kind, f.name, problem)

    def check(value: Any) -> Any:
        if value is _MISSING:
            if has_default:
                return _MISSING
            fail("is required")
        if value is None:
            if optional:
                return None
            fail("must not be null")
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            try:
                return hint(value)
            except ValueError:
                allowed = ", ".join(str(m.value) for m in hint)
                fail(f"{value!r} is not one of {allowed}")
        if hint is bool:
            if not isinstance(value, bool):
                fail(f"must be true or false, got {type(value).__name__}")
            return value
        if hint in (int, float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                fail(f"must be a number, got {type(value).__name__}")
            if hint is int and not isinstance(value, int):
                fail(f"must be a whole number, got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                fail("must be a finite number")
            if hint is float:
                try:
                    value = float(value)
                except OverflowError:  # an int of hundreds of digits
                    fail("must be a finite number")
            low, high = meta.get("minimum", 0), meta.get("maximum")
            if high is None:
                high = _INT_MAX if hint is int else _FLOAT_MAX
            if low is not None and value < low:
                fail(f"must be at least {low}, got {value!r:.40}")
            if high is not None and value > high:
                fail(f"must be at most {high}, got {value!r:.40}")
            return value
        if hint is str:
            if not isinstance(value, str):
                fail(f"must be a string, got {type(value).__name__}")
            pattern = meta.get("pattern")
            if pattern is not None and not pattern.match(value):
                fail(f"{value[:80]!r} is not a valid id ({meta['pattern_help']})")
            max_len = meta.get("max_len")
            if max_len is not None and len(value) > max_len:
                fail(f"is longer than {max_len} characters")
            refused = meta.get("refused")
            if refused is not None and (bad := refused.search(value)) is not None:
                fail(f"holds the character {bad.group()!r} at {bad.start()}")
            return value
        raise TypeError(f"{kind}.{f.name}: unsupported field type {hint!r}")

    return check


def new_id() -> str:
    """A fresh message/session id: 32 hex characters."""
    return uuid.uuid4().hex
