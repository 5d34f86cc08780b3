"""Property tests of message validation: whatever arrives, only a MessageError escapes."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from evproto.errors import MessageError
from evproto.messages import CHANNELS
from evproto.schema import Message, MsgType, decode_message, message_class
from evstack.fuzzing import fuzz_target
from hypothesis import strategies as st

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),  # too large for a float
    st.floats(),  # NaN and infinities included
    st.text(max_size=80),
    # lone surrogates and control characters, which st.text() leaves out
    st.text(st.characters(codec=None, exclude_categories=()), max_size=20),
    st.floats(min_value=1e6, max_value=1e308),  # finite, far out of range
    st.integers(min_value=2**53, max_value=2**64),
    st.sampled_from(["CP-1", "", "OK", "start", "driver", "x" * 300]),
)
# Every field is a scalar: a container is refused whatever it holds, so one or
# two levels of nesting cover what deeper ones would (st.recursive cost 2-3x more).
_flat = st.lists(_scalars, max_size=3) | st.dictionaries(st.text(max_size=5), _scalars, max_size=3)
_json = st.one_of(
    _scalars,
    _flat,
    st.lists(_flat, max_size=2),
    st.dictionaries(st.text(max_size=5), _flat, max_size=2),
)
# (kind, its field names, which of "v" and the fields are there: one draw, not
# one per field); built once, as a strategy made in every draw is validated each time
_KINDS = st.sampled_from(
    [
        (kind, names, st.integers(0, 2 ** (len(names) + 1) - 1))
        for kind in MsgType
        for names in [tuple(f.name for f in dataclasses.fields(message_class(kind)))]
    ]
)


@st.composite
def message_like(draw: st.DrawFn) -> dict[str, Any]:
    """A dict shaped like some message, each field maybe missing or of any JSON value."""
    kind, fields, presence = draw(_KINDS)
    out: dict[str, Any] = {"type": kind.value}
    present = draw(presence)
    if present & 1:
        out["v"] = draw(_scalars)
    for bit, name in enumerate(fields, start=1):
        if present >> bit & 1:
            out[name] = draw(_json)
    return out


def _only_message_errors(raw: bytes | dict[str, Any], accept: frozenset[MsgType] | None) -> None:
    try:
        msg = decode_message(raw, accept)
    except MessageError as exc:
        assert exc.message
        return
    assert isinstance(msg, Message)
    assert decode_message(msg.to_dict()) == msg  # what passed validation round-trips
    for name, value in msg.to_dict().items():
        if isinstance(value, str):
            value.encode("utf-8")  # storable and loggable: no lone surrogate
            assert len(value.splitlines()) <= 1 or name == "payload", (name, value)  # one line
        elif isinstance(value, int | float) and not isinstance(value, bool):
            assert abs(value) <= 1e12, (name, value)  # bounded, as every peer can hold


@fuzz_target(
    500, batch=20, data=message_like(), channel=st.sampled_from([None, *CHANNELS.values()])
)
def test_any_message_shaped_input_is_a_message_or_a_message_error(
    data: dict[str, Any], channel: frozenset[MsgType] | None
) -> None:
    _only_message_errors(data, channel)
    try:
        wire = json.dumps(data).encode()
    except ValueError:
        return
    _only_message_errors(wire, channel)


@fuzz_target(300, batch=30, raw=st.binary(max_size=200))
def test_any_bytes_are_a_message_or_a_message_error(raw: bytes) -> None:
    _only_message_errors(raw, None)
