"""The ``evstack`` command: ``run`` (behind ``make run``) and ``broker``."""

from __future__ import annotations

import subprocess

import pytest
from evstack.__main__ import main
from evstack.localstack import console_script


def test_run_refuses_a_negative_number_of_cps(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--cps", "-1"])
    assert exit_info.value.code == 2
    assert "--cps must be 0 or more" in capsys.readouterr().err


def test_the_console_script_lists_its_commands() -> None:
    done = subprocess.run(
        [console_script("evstack"), "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "run" in done.stdout and "broker" in done.stdout
