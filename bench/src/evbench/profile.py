"""Where the central spends its CPU: py-spy samples, summarised by function.

``py-spy record --format raw`` writes collapsed stacks (``frame;frame;… count``);
the last frame of a stack is where the sample was taken (self time), and every
frame on it is inclusive time.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

__all__ = ["PySpy", "summarize_collapsed"]

_LINE_NUMBER = re.compile(r":\d+\)$")


def _function(frame: str) -> str:
    """``handle (evcentral/monitor_server.py:120)`` -> ``handle (evcentral/monitor_server.py)``."""
    frame = _LINE_NUMBER.sub(")", frame.strip())
    return frame.replace(str(Path(sys.prefix)) + "/", "")


def summarize_collapsed(text: str, top: int = 15) -> dict[str, Any]:
    """Top functions by own share of the samples (with their inclusive share), and by inclusive."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_function(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    if not total:
        return {"samples": 0, "self": [], "inclusive": []}
    leaders = own.most_common(top)
    return {
        "samples": total,
        "self": [[name, n / total, inclusive[name] / total] for name, n in leaders],
        "inclusive": [[name, n / total] for name, n in inclusive.most_common(top)],
    }


class PySpy:
    """One ``py-spy record`` of a process, without pausing it (``--nonblocking``)."""

    def __init__(self, pid: int, seconds: float, out: Path, rate: int = 49) -> None:
        self.out = out
        binary = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self.argv = [
            binary, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
            "--rate", str(rate), "--nonblocking", "--format", "raw", "--output", str(out),
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> bool:
        try:
            self._proc = subprocess.Popen(
                self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
        except OSError:
            return False
        return True

    def finish(self, timeout: float = 60.0) -> dict[str, Any] | None:
        if self._proc is None:
            return None
        try:
            _out, err = self._proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            return None
        if self._proc.returncode != 0 or not self.out.exists():
            return {"error": err.decode(errors="replace").strip()[-500:]}
        return summarize_collapsed(self.out.read_text(errors="replace"))
