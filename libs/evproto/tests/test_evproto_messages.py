"""Frames and records <-> typed messages: round trips, exact wire JSON, validation."""

from __future__ import annotations

import dataclasses
import enum
import json
import subprocess
import sys
import types
import typing
from typing import Any

import pytest
from evproto.errors import InvalidField, MalformedMessage, MessageError, UnknownMessageType
from evproto.messages import (
    CHANNELS,
    Authenticate,
    Challenge,
    Directive,
    DirectiveAction,
    DriverUpdate,
    ErrorReply,
    HealthAnswer,
    HealthRequest,
    Origin,
    SessionPhase,
    SupplyRequest,
    Telemetry,
)
from evproto.schema import (
    SCHEMA_VERSION,
    Message,
    MsgType,
    decode_message,
    encode_message,
    message_class,
)
from evproto.states import Health
from evproto.topics import Topic

ALL_CLASSES = [message_class(kind) for kind in MsgType]


def _example_value(cls: type[Message], field: dataclasses.Field[Any]) -> Any:
    """A valid, non-default value for any field, built from its type and constraints."""
    hint = typing.get_type_hints(cls)[field.name]
    if isinstance(hint, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    meta = field.metadata
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return list(hint)[-1]
    if hint is bool:
        return True
    if hint is int:
        return 7
    if hint is float:
        high = meta.get("maximum")
        return 2.5 if high is None else min(2.5, high)
    if "pattern" in meta:
        return f"{field.name.replace('_', '-')}-1"
    return f"some {field.name}"


def example(cls: type[Message]) -> Message:
    return cls(**{f.name: _example_value(cls, f) for f in dataclasses.fields(cls)})


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.TYPE.value)
def test_every_type_round_trips_through_dict_and_wire(cls: type[Message]) -> None:
    msg = example(cls)

    assert cls.from_dict(msg.to_dict()) == msg
    assert decode_message(encode_message(msg)) == msg
    assert decode_message(msg.to_dict()) == msg


@pytest.mark.parametrize("cls", ALL_CLASSES, ids=lambda c: c.TYPE.value)
def test_every_type_round_trips_with_only_its_required_fields(cls: type[Message]) -> None:
    required = {
        f.name: _example_value(cls, f)
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING
    }
    msg = cls(**required)

    assert decode_message(encode_message(msg)) == msg


def test_every_type_is_registered_and_carried_by_some_channel() -> None:
    assert {c.TYPE for c in ALL_CLASSES} == set(MsgType)
    carried = set().union(*CHANNELS.values())
    assert carried == set(MsgType)


def test_every_topic_has_a_channel() -> None:
    assert {str(t) for t in Topic} <= set(CHANNELS)


def test_wire_is_compact_ascii_json_with_type_and_version_first() -> None:
    wire = encode_message(Authenticate(cp_id="CP-1"))

    assert wire == b'{"type":"authenticate","v":1,"cp_id":"CP-1"}'
    assert encode_message(ErrorReply(code="x", message="é\x02")).isascii()


TELEMETRY_MSG = Telemetry(
    session_id="s1",
    cp_id="CP-1",
    driver_id="D1",
    seq=1,
    kwh=0.5,
    eur=0.15,
    power_kw=22.0,
    elapsed_s=1.0,
    sent_at=11.0,
)

EXACT_WIRE = [
    pytest.param(
        Authenticate(cp_id="CP-1"),
        '{"type":"authenticate","v":1,"cp_id":"CP-1"}',
        id="monitor->central",
    ),
    pytest.param(
        Challenge(nonce="ab12", registered=False),
        '{"type":"challenge","v":1,"nonce":"ab12","registered":false}',
        id="central->monitor",
    ),
    pytest.param(
        HealthRequest(seq=3),
        '{"type":"health_request","v":1,"seq":3}',
        id="monitor->engine",
    ),
    pytest.param(
        HealthAnswer(cp_id="CP-1", seq=3, health=Health.KO),
        '{"type":"health_answer","v":1,"cp_id":"CP-1","seq":3,"health":"KO","reason":""}',
        id="engine->monitor",
    ),
    pytest.param(
        SupplyRequest(
            request_id="r1", requester_id="D1", origin=Origin.DRIVER, cp_id="CP-1", sent_at=10.0
        ),
        '{"type":"supply_request","v":1,"request_id":"r1","requester_id":"D1",'
        '"origin":"driver","cp_id":"CP-1","max_kwh":null,"max_eur":null,"max_minutes":null,'
        '"sent_at":10.0,"ttl_s":30.0,"id_token":null,"proof":""}',
        id="driver->central",
    ),
    pytest.param(
        TELEMETRY_MSG,
        '{"type":"telemetry","v":1,"session_id":"s1","cp_id":"CP-1","driver_id":"D1",'
        '"seq":1,"kwh":0.5,"eur":0.15,"power_kw":22.0,"elapsed_s":1.0,"sent_at":11.0,'
        '"proof":""}',
        id="engine->central",
    ),
    pytest.param(
        DriverUpdate(
            driver_id="D1",
            session_id="s1",
            cp_id="CP-1",
            phase=SessionPhase.ERROR,
            reason="charging point fault",
            sent_at=12.0,
        ),
        '{"type":"driver_update","v":1,"driver_id":"D1","session_id":"s1","cp_id":"CP-1",'
        '"phase":"error","seq":0,"kwh":0.0,"eur":0.0,"elapsed_s":0.0,'
        '"reason":"charging point fault","sent_at":12.0}',
        id="central->driver",
    ),
]


@pytest.mark.parametrize(("msg", "wire"), EXACT_WIRE)
def test_exact_wire_json(msg: Message, wire: str) -> None:
    assert encode_message(msg).decode() == wire
    assert decode_message(wire.encode()) == msg


def test_directive_action_and_enums_decode_to_enum_members() -> None:
    raw = {
        "type": "directive",
        "directive_id": "d1",
        "cp_id": "CP-1",
        "action": "start",
        "sent_at": 1,
    }
    msg = decode_message(raw)
    assert isinstance(msg, Directive)
    assert msg.action is DirectiveAction.START
    assert isinstance(msg.sent_at, float)


def test_unknown_extra_fields_are_ignored_for_forward_compatibility() -> None:
    assert decode_message({"type": "health_request", "seq": 1, "new": "x"}) == HealthRequest(seq=1)


# --- each kind of malformed field --------------------------------------------------

TELEMETRY = TELEMETRY_MSG.to_dict()


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not _DROP}


_DROP = object()

INVALID = [
    pytest.param(_with(TELEMETRY, kwh=_DROP), "kwh", "is required", id="missing"),
    pytest.param(_with(TELEMETRY, kwh="0.5"), "kwh", "must be a number, got str", id="wrong-type"),
    pytest.param(_with(TELEMETRY, seq=True), "seq", "must be a number, got bool", id="bool-number"),
    pytest.param(_with(TELEMETRY, seq=1.5), "seq", "whole number", id="float-for-int"),
    pytest.param(_with(TELEMETRY, kwh=float("nan")), "kwh", "finite", id="nan"),
    pytest.param(_with(TELEMETRY, eur=float("inf")), "eur", "finite", id="inf"),
    pytest.param(_with(TELEMETRY, kwh=-0.1), "kwh", "at least 0", id="negative"),
    pytest.param(_with(TELEMETRY, power_kw=1000.5), "power_kw", "at most 1000", id="over-max"),
    pytest.param(_with(TELEMETRY, seq=2**53 + 1), "seq", f"at most {2**53}", id="over-2^53"),
    pytest.param(_with(TELEMETRY, seq=2**63 - 1), "seq", f"at most {2**53}", id="int64-max"),
    pytest.param(_with(TELEMETRY, kwh=1e308), "kwh", "at most 1000000", id="huge-kwh"),
    pytest.param(_with(TELEMETRY, eur=1e308), "eur", "at most 100000000", id="huge-eur"),
    pytest.param(_with(TELEMETRY, sent_at=1e300), "sent_at", "at most 10", id="huge-time"),
    pytest.param(_with(TELEMETRY, kwh=10**400), "kwh", "finite", id="int-beyond-float"),
    pytest.param(_with(TELEMETRY, cp_id="CP 1"), "cp_id", "not a valid id", id="id-space"),
    pytest.param(_with(TELEMETRY, cp_id="C" * 65), "cp_id", "not a valid id", id="id-too-long"),
    pytest.param(_with(TELEMETRY, cp_id="CP-1\n"), "cp_id", "not a valid id", id="id-newline"),
    pytest.param(_with(TELEMETRY, cp_id=""), "cp_id", "not a valid id", id="id-empty"),
    pytest.param(_with(TELEMETRY, cp_id=None), "cp_id", "must not be null", id="null"),
    pytest.param(
        {"type": "status", "cp_id": "CP-1", "health": "KO", "reason": "bad \ud800"},
        "reason",
        "'\\ud800' at 4",
        id="surrogate",
    ),
    pytest.param(
        {"type": "status", "cp_id": "CP-1", "health": "KO", "reason": "a\nb"},
        "reason",
        "'\\n' at 1",
        id="newline-in-text",
    ),
    pytest.param(
        {"type": "status", "cp_id": "CP-1", "health": "KO", "reason": "\x1b[2J"},
        "reason",
        "'\\x1b' at 0",
        id="escape-code",
    ),
    pytest.param(_with(TELEMETRY, v=2), "v", "schema version 2", id="version"),
    pytest.param(_with(TELEMETRY, v=True), "v", "schema version True", id="version-bool"),
    pytest.param(
        {"type": "register", "cp_id": "CP-1", "location": "x" * 121, "proof": "p"},
        "location",
        "longer than 120 characters",
        id="text-too-long",
    ),
    pytest.param(
        {"type": "status", "cp_id": "CP-1", "health": "MAYBE"},
        "health",
        "'MAYBE' is not one of OK, KO, UNREACHABLE",
        id="unknown-enum",
    ),
    pytest.param(
        {"type": "challenge", "nonce": "n", "registered": 1},
        "registered",
        "must be true or false, got int",
        id="number-for-bool",
    ),
]


@pytest.mark.parametrize(("raw", "field", "problem"), INVALID)
def test_a_malformed_field_is_rejected_naming_the_field_and_the_problem(
    raw: dict[str, Any], field: str, problem: str
) -> None:
    for wire in (raw, json.dumps(raw).encode()):
        with pytest.raises(InvalidField) as caught:
            decode_message(wire)
        assert caught.value.field == field
        assert problem in caught.value.problem
        assert caught.value.message.startswith(f"{raw['type']}.{field}: ")
        assert caught.value.code == "invalid_field"


def test_from_dict_of_the_wrong_class_names_the_type() -> None:
    with pytest.raises(InvalidField) as caught:
        HealthRequest.from_dict(TELEMETRY)
    assert caught.value.field == "type"


@pytest.mark.parametrize(
    ("wire", "error", "says"),
    [
        pytest.param(b'{"type":"teleport","v":1}', UnknownMessageType, "teleport", id="unknown"),
        pytest.param(b'["telemetry"]', MalformedMessage, "JSON object", id="array"),
        pytest.param(b'"telemetry"', MalformedMessage, "JSON object", id="string"),
        pytest.param(b'{"v":1}', MalformedMessage, "'type'", id="no-type"),
        pytest.param(b'{"type":5}', MalformedMessage, "'type'", id="type-not-str"),
        pytest.param(b"{not json", MalformedMessage, "not UTF-8 JSON", id="not-json"),
        pytest.param(b"", MalformedMessage, "not UTF-8 JSON", id="empty"),
        pytest.param(b'{"type":"\xff"}', MalformedMessage, "not UTF-8 JSON", id="bad-utf8"),
        pytest.param(
            '{"type":"health_request","seq":1}'.encode("utf-16"),
            MalformedMessage,
            "not UTF-8 JSON",
            id="utf16",
        ),
        pytest.param(b"[" * 60_000, MalformedMessage, "nested", id="deep-nesting"),
    ],
)
def test_input_that_is_not_a_message_gets_a_clear_message_error(
    wire: bytes, error: type[MessageError], says: str
) -> None:
    with pytest.raises(error) as caught:
        decode_message(wire)
    assert says in caught.value.message


def test_a_type_not_accepted_on_this_channel_is_refused() -> None:
    wire = encode_message(HealthRequest(seq=1))
    with pytest.raises(UnknownMessageType, match="not accepted here"):
        decode_message(wire, CHANNELS["central<-monitor"])
    assert decode_message(wire, CHANNELS["engine<-monitor"]) == HealthRequest(seq=1)


def test_schema_version_is_one_and_may_be_omitted() -> None:
    assert SCHEMA_VERSION == 1
    assert decode_message(b'{"type":"health_request","seq":2}') == HealthRequest(seq=2)


def test_messages_are_frozen() -> None:
    msg = HealthRequest(seq=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        msg.seq = 2  # type: ignore[misc]


def test_importing_the_package_registers_every_message_type() -> None:
    code = 'import evproto; print(evproto.decode_message(b\'{"type": "info_request"}\'))'
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "InfoRequest()"
