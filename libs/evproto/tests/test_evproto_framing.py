"""Bytes <-> frames: exact encoder output and the incremental, bounded decoder."""

from __future__ import annotations

import pytest
from evproto.errors import FrameTooLarge, ProtocolError
from evproto.framing import (
    DEFAULT_MAX_FRAME,
    Control,
    Frame,
    FrameDecoder,
    encode_frame,
    lrc,
)

STX, ETX = b"\x02", b"\x03"


def test_encoder_writes_stx_data_etx_and_the_xor_of_the_data() -> None:
    data = b'{"type":"x"}'
    expected_lrc = 0
    for byte in data:
        expected_lrc ^= byte

    assert encode_frame(data) == STX + data + ETX + bytes([expected_lrc])


def test_encoder_exact_bytes_for_a_known_payload() -> None:
    # 0x41 ^ 0x42 ^ 0x43 = 0x40
    assert encode_frame(b"ABC") == b"\x02ABC\x03\x40"
    assert lrc(b"ABC") == 0x40
    assert encode_frame(b"") == b"\x02\x03\x00"


def test_control_bytes_have_their_ascii_values() -> None:
    assert (Control.ENQ.byte, Control.ACK.byte, Control.NACK.byte, Control.EOT.byte) == (
        b"\x05",
        b"\x06",
        b"\x15",
        b"\x04",
    )


def test_one_frame_in_one_read() -> None:
    assert FrameDecoder().feed(encode_frame(b"hello")) == [Frame(b"hello")]


@pytest.mark.parametrize("split", range(1, len(encode_frame(b'{"a":1}'))))
def test_a_frame_split_at_any_point_is_decoded_once(split: int) -> None:
    wire = encode_frame(b'{"a":1}')
    decoder = FrameDecoder()

    first = decoder.feed(wire[:split])
    second = decoder.feed(wire[split:])

    assert first == []
    assert second == [Frame(b'{"a":1}')]


def test_a_frame_fed_one_byte_at_a_time() -> None:
    decoder = FrameDecoder()
    items = [item for byte in encode_frame(b"slow") for item in decoder.feed(bytes([byte]))]
    assert items == [Frame(b"slow")]


def test_several_frames_and_controls_in_one_read_keep_their_order() -> None:
    wire = (
        Control.ENQ.byte
        + encode_frame(b"one")
        + Control.ACK.byte
        + encode_frame(b"two")
        + Control.NACK.byte
        + Control.EOT.byte
    )

    assert FrameDecoder().feed(wire) == [
        Control.ENQ,
        Frame(b"one"),
        Control.ACK,
        Frame(b"two"),
        Control.NACK,
        Control.EOT,
    ]


def test_bytes_outside_a_frame_are_dropped_and_counted() -> None:
    decoder = FrameDecoder()

    items = decoder.feed(b"noise" + encode_frame(b"ok") + b"\xff\x00")

    assert items == [Frame(b"ok")]
    assert decoder.dropped_bytes == len(b"noise") + 2


def test_a_bad_lrc_gives_an_invalid_frame_and_the_next_one_is_fine() -> None:
    bad = STX + b"data" + ETX + bytes([lrc(b"data") ^ 0xFF])
    decoder = FrameDecoder()

    assert decoder.feed(bad + encode_frame(b"next")) == [
        Frame(b"data", valid=False),
        Frame(b"next"),
    ]


def test_an_unfinished_frame_cut_by_a_new_stx_is_dropped_and_counted() -> None:
    decoder = FrameDecoder()

    items = decoder.feed(STX + b"lost" + encode_frame(b"kept"))

    assert items == [Frame(b"kept")]
    assert decoder.dropped_bytes == 1 + len(b"lost")


def test_a_frame_over_the_default_maximum_raises_and_the_decoder_recovers() -> None:
    decoder = FrameDecoder()
    assert decoder.max_frame == DEFAULT_MAX_FRAME == 64 * 1024

    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(encode_frame(b"x" * (DEFAULT_MAX_FRAME + 1)))

    assert isinstance(caught.value, ProtocolError)
    assert str(DEFAULT_MAX_FRAME) in caught.value.message
    assert decoder.feed(encode_frame(b"after")) == [Frame(b"after")]


def test_a_frame_of_exactly_the_maximum_is_accepted() -> None:
    assert FrameDecoder(max_frame=8).feed(encode_frame(b"x" * 8)) == [Frame(b"x" * 8)]


def test_the_maximum_is_configurable_and_checked_across_reads() -> None:
    decoder = FrameDecoder(max_frame=8)
    decoder.feed(STX + b"x" * 5)

    with pytest.raises(FrameTooLarge):
        decoder.feed(b"x" * 4)


def test_frame_too_large_carries_what_the_same_read_completed_before_it() -> None:
    decoder = FrameDecoder(max_frame=8)

    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(Control.ACK.byte + encode_frame(b"ok") + STX + b"y" * 9)

    assert caught.value.decoded == (Control.ACK, Frame(b"ok"))
