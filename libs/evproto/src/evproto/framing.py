"""Bytes <-> frames: ``<STX><DATA><ETX><LRC>`` with the ENQ/ACK/NACK/EOT controls.

LRC is the XOR of the DATA bytes. DATA is UTF-8 JSON produced with
``ensure_ascii`` so it never contains a control byte; that is what lets the
decoder resynchronise on STX after garbage. The decoder is incremental (feed it
whatever a read returned) and bounded (a frame over ``max_frame`` raises
:class:`FrameTooLarge` and the caller closes the link).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from functools import reduce

from evproto.errors import FrameTooLarge

__all__ = [
    "DEFAULT_MAX_FRAME",
    "Control",
    "Frame",
    "FrameDecoder",
    "encode_frame",
    "lrc",
]

STX = 0x02
ETX = 0x03
DEFAULT_MAX_FRAME = 64 * 1024


class Control(enum.IntEnum):
    ENQ = 0x05
    ACK = 0x06
    NACK = 0x15
    EOT = 0x04

    @property
    def byte(self) -> bytes:
        return bytes((self.value,))


_CONTROL_BYTES = frozenset(int(c) for c in Control)
_DELIMITER = re.compile(b"[\\x02\\x03]")  # STX or ETX, whichever comes first


@dataclass(frozen=True, slots=True)
class Frame:
    """A complete frame; ``valid`` is False when its LRC did not match."""

    data: bytes
    valid: bool = True


def lrc(data: bytes) -> int:
    return reduce(lambda acc, b: acc ^ b, data, 0)


def encode_frame(data: bytes) -> bytes:
    return bytes((STX,)) + data + bytes((ETX, lrc(data)))


class _State(enum.Enum):
    IDLE = 0
    DATA = 1
    CHECKSUM = 2


class FrameDecoder:
    """Incremental, bounded frame decoder.

    ``feed`` returns the frames and control bytes completed by the new bytes,
    in order. Bytes outside a frame that are not controls are dropped and
    counted in ``dropped_bytes``; so is an unfinished frame cut short by a new
    STX (DATA never holds a control byte, so that STX starts a real frame).
    The buffer never holds more than ``max_frame`` bytes: the byte that would
    exceed it raises :class:`FrameTooLarge` (carrying, in ``decoded``, what the
    same chunk completed before it) and the decoder starts over.
    """

    __slots__ = ("_buf", "_state", "dropped_bytes", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self.dropped_bytes = 0
        self._buf = bytearray()
        self._state = _State.IDLE

    def feed(self, chunk: bytes) -> list[Frame | Control]:
        out: list[Frame | Control] = []
        i, n = 0, len(chunk)
        while i < n:
            if self._state is _State.IDLE:
                start = chunk.find(STX, i)
                end = n if start < 0 else start
                for b in chunk[i:end]:
                    if b in _CONTROL_BYTES:
                        out.append(Control(b))
                    else:
                        self.dropped_bytes += 1
                if start < 0:
                    break
                self._state = _State.DATA
                i = start + 1
            elif self._state is _State.DATA:
                found = _DELIMITER.search(chunk, i)
                end = n if found is None else found.start()
                if len(self._buf) + (end - i) > self.max_frame:
                    self.reset()
                    raise FrameTooLarge(
                        f"frame exceeds the maximum of {self.max_frame} bytes", decoded=out
                    )
                self._buf += chunk[i:end]
                if found is None:
                    break
                if chunk[end] == STX:  # the unfinished frame was garbage; a new one starts
                    self.dropped_bytes += 1 + len(self._buf)
                    self._buf.clear()
                else:
                    self._state = _State.CHECKSUM
                i = end + 1
            else:
                data = bytes(self._buf)
                out.append(Frame(data, valid=lrc(data) == chunk[i]))
                self._buf.clear()
                self._state = _State.IDLE
                i += 1
        return out

    def reset(self) -> None:
        self._buf.clear()
        self._state = _State.IDLE
