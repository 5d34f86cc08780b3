"""Property tests of the frame decoder: any bytes, any chunking."""

from __future__ import annotations

import itertools

from evproto.errors import FrameTooLarge
from evproto.framing import Control, Frame, FrameDecoder, encode_frame
from evstack.fuzzing import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

MAX_FRAME = 32  # small, so random input often crosses it

# Bytes rich in the interesting values (STX, ETX, controls) next to arbitrary ones.
_special = st.sampled_from([0x02, 0x03, 0x04, 0x05, 0x06, 0x15])
_wire = st.lists(st.one_of(_special, st.integers(0, 255)), max_size=300).map(bytes)
# frame payloads: anything but STX and ETX (JSON with ensure_ascii never holds them)
_payload = st.binary(max_size=40).map(lambda b: b.replace(b"\x02", b"").replace(b"\x03", b""))
_frames = st.lists(_payload)


def _chunks(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _decode(chunks: list[bytes]) -> tuple[list[Frame | Control], bool, FrameDecoder]:
    """Everything decoded up to the first FrameTooLarge, and whether it was raised."""
    decoder = FrameDecoder(max_frame=MAX_FRAME)
    items: list[Frame | Control] = []
    for chunk in chunks:
        try:
            items += decoder.feed(chunk)
        except FrameTooLarge as exc:
            items += exc.decoded  # type: ignore[arg-type]
            return items, True, decoder
        assert len(decoder._buf) <= MAX_FRAME  # memory stays bounded
    return items, False, decoder


@fuzz_settings(300)
@given(data=_wire, cuts=st.lists(st.integers(0, 400), max_size=20))
def test_any_bytes_any_chunking_decode_the_same_and_only_frame_too_large_escapes(
    data: bytes, cuts: list[int]
) -> None:
    whole = _decode([data])
    chunked = _decode(_chunks(data, cuts))
    bytewise = _decode([bytes([b]) for b in data])

    assert whole[:2] == chunked[:2] == bytewise[:2]
    if not whole[1]:
        assert whole[2].dropped_bytes == chunked[2].dropped_bytes == bytewise[2].dropped_bytes


@fuzz_settings(200)
@given(payloads=_frames, cuts=st.lists(st.integers(0, 2000), max_size=30))
def test_encoded_frames_come_back_exactly_whatever_the_chunking(
    payloads: list[bytes], cuts: list[int]
) -> None:
    wire = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder(max_frame=64)

    items = [item for chunk in _chunks(wire, cuts) for item in decoder.feed(chunk)]

    assert items == [Frame(p) for p in payloads]
    assert decoder.dropped_bytes == 0


@fuzz_settings(100)
@given(size=st.integers(MAX_FRAME + 1, 4 * MAX_FRAME), cuts=st.lists(st.integers(0, 200)))
def test_the_buffer_never_grows_past_the_maximum(size: int, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_frame=MAX_FRAME)
    raised = False
    for chunk in _chunks(b"\x02" + b"z" * size, cuts):
        try:
            decoder.feed(chunk)
        except FrameTooLarge:
            raised = True
        assert len(decoder._buf) <= MAX_FRAME
    assert raised
