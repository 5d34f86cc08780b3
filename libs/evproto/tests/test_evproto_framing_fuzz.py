"""Property tests of the frame decoder: any bytes, any chunking."""

from __future__ import annotations

import itertools

from evproto.errors import FrameTooLarge
from evproto.framing import Control, Frame, FrameDecoder, encode_frame
from evstack.fuzzing import fuzz_target
from hypothesis import strategies as st

MAX_FRAME = 32  # small, so random input often crosses it

# Hypothesis pays per drawn choice (most of a target's time), so each input is
# drawn as a few byte strings and spread out here, not byte by byte or cut by cut.
_SPECIAL = b"\x02\x03\x04\x05\x06\x15"  # STX, ETX and the controls


def _sprinkle(drawn: tuple[bytes, bytes]) -> bytes:
    """Any bytes, rich in STX, ETX and controls: where the (cycled) mask is low, a special."""
    data, mask = drawn
    if not mask:
        return data
    mask = mask * (len(data) // len(mask) + 1)
    return bytes(b if m >= 128 else _SPECIAL[m % 6] for b, m in zip(data, mask, strict=False))


def _split(drawn: tuple[bytes, bytes]) -> list[bytes]:
    """Payloads of the lengths ``sizes`` holds (0-40 bytes each), filled from ``blob``."""
    sizes, blob = drawn
    fill = blob * (sum(sizes) // max(len(blob), 1) + 1) if blob else b"\x00" * sum(sizes)
    out, at = [], 0
    for size in sizes:
        out.append(fill[at : at + size % 41].replace(b"\x02", b"").replace(b"\x03", b""))
        at += size % 41
    return out


def _cuts(max_cuts: int, width: int = 1) -> st.SearchStrategy[list[int]]:
    """Up to ``max_cuts`` offsets of ``width`` bytes each (taken modulo the length)."""
    return st.binary(max_size=width * max_cuts).map(
        lambda b: [int.from_bytes(b[i : i + width]) for i in range(0, len(b) - width + 1, width)]
    )


_wire = st.tuples(st.binary(max_size=300), st.binary(max_size=64)).map(_sprinkle)
# frame payloads: anything but STX and ETX (JSON with ensure_ascii never holds them)
_frames = st.tuples(st.binary(max_size=30), st.binary(max_size=600)).map(_split)


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


@fuzz_target(300, batch=8, data=_wire, cuts=_cuts(20))
def test_any_bytes_any_chunking_decode_the_same_and_only_frame_too_large_escapes(
    data: bytes, cuts: list[int]
) -> None:
    whole = _decode([data])
    chunked = _decode(_chunks(data, cuts))
    bytewise = _decode([bytes([b]) for b in data])

    assert whole[:2] == chunked[:2] == bytewise[:2]
    if not whole[1]:
        assert whole[2].dropped_bytes == chunked[2].dropped_bytes == bytewise[2].dropped_bytes


@fuzz_target(200, batch=5, payloads=_frames, cuts=_cuts(30, width=2))
def test_encoded_frames_come_back_exactly_whatever_the_chunking(
    payloads: list[bytes], cuts: list[int]
) -> None:
    wire = b"".join(encode_frame(p) for p in payloads)
    decoder = FrameDecoder(max_frame=64)

    items = [item for chunk in _chunks(wire, cuts) for item in decoder.feed(chunk)]

    assert items == [Frame(p) for p in payloads]
    assert decoder.dropped_bytes == 0


@fuzz_target(
    100,
    batch=20,
    size=st.integers(MAX_FRAME + 1, 4 * MAX_FRAME),
    cuts=_cuts(30),
)
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
