"""``evocpp stations``: the operator enrols, accepts, rejects and removes stations."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from evocpp.__main__ import main
from evocpp.store import StationStatus, Store


def run(state: Path, *argv: str, stdin: str = "") -> int:
    """``evocpp stations ARGV --state-dir STATE`` with ``stdin`` as its input."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("sys.stdin", io.StringIO(stdin))
        return main(["stations", *argv, "--state-dir", str(state)])


def test_the_operator_manages_stations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = tmp_path / "ocpp"
    assert run(state, "add", "ST-1", stdin="pa55word\n") == 0
    assert "ST-1 accepted (password set)" in capsys.readouterr().out
    Store(state / "gateway.db").enroll("ST-2", StationStatus.PENDING, None, 0.0)
    assert run(state, "list") == 0
    assert capsys.readouterr().out.splitlines() == [
        "ST-1\taccepted\tpassword",
        "ST-2\tpending\tno password",
    ]
    assert run(state, "accept", "ST-2") == 0
    assert run(state, "reject", "ST-1") == 0
    store = Store(state / "gateway.db")
    assert store.station("ST-2").status is StationStatus.ACCEPTED  # type: ignore[union-attr]
    assert store.station("ST-1").status is StationStatus.REJECTED  # type: ignore[union-attr]
    assert run(state, "remove", "ST-1") == 0
    assert run(state, "remove", "ST-1") == 4
    assert run(state, "accept", "NOPE") == 4
    assert "no station NOPE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        run(state, "accept")
    assert usage.value.code == 2
