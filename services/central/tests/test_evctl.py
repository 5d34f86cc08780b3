"""evctl, the real console script, against a running central: every command and
every output format, the 0600 config file, the environment override, exit codes."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import stat
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from evcentral.app import Central
from evproto.messages import Outcome
from evproto.states import CpState

EVCTL = str(Path(sys.executable).parent / "evctl")
TOKEN = "op-token"  # the central fixture's operator token
VIEWER_TOKEN = "view-token"  # and its viewer token


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)

    def csv(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.out)))


class Evctl:
    def __init__(self, home: Path) -> None:
        self.config = home / "evctl" / "config.json"
        self.env = {k: v for k, v in os.environ.items() if k not in {"EV_CENTRAL_URL", "EV_TOKEN"}}
        self.env.update({"EVCTL_CONFIG": str(self.config), "HOME": str(home)})

    async def __call__(self, *args: str, stdin: str = "", **env: str) -> Run:
        proc = await asyncio.create_subprocess_exec(
            EVCTL,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**self.env, **env},
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), 30)
        assert proc.returncode is not None
        return Run(proc.returncode, out.decode(), err.decode())


@pytest.fixture
async def evctl(tmp_path: Path, central: Central) -> Evctl:
    """evctl logged in to the central (the token read from stdin)."""
    tool = Evctl(tmp_path)
    url = f"http://127.0.0.1:{central.http_port}"
    done = await tool("login", "--url", url, stdin=TOKEN + "\n")
    assert done.code == 0, done.err
    assert done.out.startswith(f"logged in to {url} as operator")
    return tool


async def test_login_keeps_the_token_in_a_file_only_its_owner_reads(
    evctl: Evctl, central: Central
) -> None:
    mode = stat.S_IMODE(evctl.config.stat().st_mode)
    assert mode == 0o600
    assert json.loads(evctl.config.read_text())["token"] == TOKEN
    whoami = await evctl("whoami", "-o", "json")
    assert whoami.code == 0 and whoami.json()["role"] == "operator"  # type: ignore[index]
    refused = await evctl("login", "--url", f"http://127.0.0.1:{central.http_port}", "--token", "x")
    assert refused.code == 3 and "refused" in refused.err
    assert json.loads(evctl.config.read_text())["token"] == TOKEN  # a refused token is not kept


async def test_the_environment_wins_over_the_file(evctl: Evctl, central: Central) -> None:
    wrong = await evctl("whoami", EV_TOKEN="wrong")
    assert wrong.code == 3 and "evctl login" in wrong.err
    gone = await evctl("cps", EV_CENTRAL_URL="http://127.0.0.1:9")
    assert gone.code == 1 and "cannot reach the central at http://127.0.0.1:9" in gone.err
    fresh = Evctl(evctl.config.parent.parent / "elsewhere")
    url = f"http://127.0.0.1:{central.http_port}"
    assert (await fresh("whoami", EV_CENTRAL_URL=url, EV_TOKEN=TOKEN)).code == 0
    not_logged_in = await fresh("cps")
    assert not_logged_in.code == 2 and "evctl login" in not_logged_in.err
    token_file = evctl.config.parent / "token"
    token_file.write_text(TOKEN + "\n")
    by_file = await fresh("whoami", EV_CENTRAL_URL=url, EV_TOKEN_FILE=str(token_file))
    assert by_file.code == 0 and "operator" in by_file.out
    missing = await fresh("whoami", EV_CENTRAL_URL=url, EV_TOKEN_FILE="/nonexistent/token")
    assert missing.code == 2 and "/nonexistent/token" in missing.err


async def test_cps_and_cp_in_every_format(evctl: Evctl, fleet: list[str]) -> None:
    online, offline = fleet
    table = await evctl("cps")
    assert table.code == 0
    header, *lines = table.out.splitlines()
    assert header.split() == ["CP_ID", "STATE", "LOCATION", "PRICE", "DRIVER_ID", "KWH", "EUR"]
    assert [line.split()[0] for line in lines] == [online, offline]
    active = (await evctl("cps", "--state", "ACTIVE", "-o", "json")).json()
    assert [(cp["cp_id"], cp["location"]) for cp in active] == [(online, "North 1")]  # type: ignore[union-attr, index]
    rows = (await evctl("cps", "--search", "South", "-o", "csv")).csv()
    assert [(r["cp_id"], r["state"]) for r in rows] == [(offline, "DISCONNECTED")]
    bad = await evctl("cps", "--state", "ON_FIRE")
    assert bad.code == 2 and "ACTIVE" in bad.err

    detail = await evctl("cp", online)
    assert detail.code == 0 and "North 1" in detail.out and "recent states" in detail.out
    as_json = (await evctl("cp", online, "-o", "json")).json()
    assert as_json["state"] == "ACTIVE" and as_json["history"][0]["state"] == "ACTIVE"  # type: ignore[index]
    assert (await evctl("cp", online, "-o", "csv")).csv()[0]["location"] == "North 1"
    missing = await evctl("cp", "CP-nowhere")
    assert missing.code == 1 and "404" in missing.err


async def test_stop_resume_and_price(
    evctl: Evctl, central: Central, fleet: list[str], wait_until
) -> None:
    online, _offline = fleet
    stopped = await evctl("stop", online)
    assert stopped.code == 0 and "STOP" in stopped.out
    await wait_until(lambda: central.registry.state_of(online) is CpState.STOPPED, what="STOPPED")
    resumed = await evctl("resume", online, "-o", "json")
    assert resumed.json()["cp_id"] == online  # type: ignore[index]
    await wait_until(lambda: central.registry.state_of(online) is CpState.ACTIVE, what="ACTIVE")
    every = (await evctl("stop", "--all", "-o", "csv")).csv()
    assert every == [{"cp_id": "(all)", "action": "STOP", "affected": "2"}]
    await wait_until(lambda: central.registry.state_of(online) is CpState.STOPPED, what="STOPPED")
    assert (await evctl("resume", "--all")).code == 0
    await wait_until(lambda: central.registry.state_of(online) is CpState.ACTIVE, what="ACTIVE")
    price = await evctl("price", online, "0.45", "-o", "json")
    assert price.code == 0 and price.json()["price"] == 0.45  # type: ignore[index]
    assert central.registry.cps[online].price == 0.45
    too_dear = await evctl("price", online, "1000")
    assert too_dear.code == 2 and "between 0 and" in too_dear.err
    assert (await evctl("stop")).code == 2  # an id or --all


async def test_sessions_filters_in_every_format(
    evctl: Evctl, central: Central, ended_session
) -> None:
    for n in range(6):
        driver = "D1" if n % 2 == 0 else "D2"
        outcome = Outcome.COMPLETED if n < 4 else Outcome.ABORTED
        at = time.time() - 3600 * (10 - n)
        central.db.save_session(ended_session(f"s-{n}", "CP-A", driver, outcome, at))
    table = await evctl("sessions", "--driver", "D1")
    assert table.code == 0
    assert [line.split()[0] for line in table.out.splitlines()[1:]] == ["s-4", "s-2", "s-0"]
    as_json = (await evctl("sessions", "--outcome", "aborted", "-o", "json")).json()
    assert [s["session_id"] for s in as_json] == ["s-5", "s-4"]  # type: ignore[union-attr, index]
    rows = (await evctl("sessions", "--cp", "CP-A", "--since", "7.5h", "-o", "csv")).csv()
    assert [r["session_id"] for r in rows] == ["s-5", "s-4", "s-3"]
    assert rows[0]["ended_at"].endswith("+00:00")  # the central's CSV export, ISO times
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 5.5 * 3600))
    recent = (await evctl("sessions", "--since", since, "-o", "json")).json()
    assert [s["session_id"] for s in recent] == ["s-5"]  # type: ignore[union-attr, index]
    bad = await evctl("sessions", "--since", "last tuesday")
    assert bad.code == 2 and "not a time" in bad.err


async def test_summary_version_and_completion(evctl: Evctl, fleet: list[str]) -> None:
    summary = (await evctl("summary", "-o", "json")).json()
    assert summary["states"]["ACTIVE"] == 1  # type: ignore[index]
    assert "CPs DISCONNECTED" in (await evctl("summary")).out
    version = await evctl("--version")
    assert version.code == 0 and version.out.startswith("evctl: evcentral ")
    bash = await evctl("completion", "bash")
    assert "complete -F _evctl evctl" in bash.out and "--outcome" in bash.out
    zsh = await evctl("completion", "zsh")
    assert zsh.out.startswith("autoload -U +X bashcompinit")
    checked = await asyncio.create_subprocess_exec(
        "bash", "-n", stdin=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    _out, err = await checked.communicate(bash.out.encode())
    assert checked.returncode == 0, err


async def test_a_viewer_token_reads_but_cannot_act(
    evctl: Evctl, central: Central, fleet: list[str]
) -> None:
    url = f"http://127.0.0.1:{central.http_port}"
    viewer = Evctl(evctl.config.parent.parent / "viewer")
    done = await viewer("login", "--url", url, "--token", VIEWER_TOKEN)
    assert done.code == 0 and "as viewer" in done.out
    assert len((await viewer("cps", "-o", "json")).json()) == 2  # type: ignore[arg-type]
    refused = await viewer("stop", fleet[0])
    assert refused.code == 3 and "operator token" in refused.err
    assert central.registry.state_of(fleet[0]) is CpState.ACTIVE


async def test_reset_forgets_a_cps_key_and_drops_its_link(
    evctl: Evctl, central: Central, fleet: list[str], wait_until
) -> None:
    online, _offline = fleet
    done = await evctl("reset", online)
    assert done.code == 0 and "RESET" in done.out
    await wait_until(lambda: central.registry.state_of(online) is CpState.DISCONNECTED, what="drop")
    assert central.registry.cps[online].stored_key == ""  # the token may enroll it again


def _parsed(run: Run, fmt: str) -> object:
    """What a program reads from each output format (and that it is well formed)."""
    assert run.code == 0, run.err
    if fmt == "json":
        return run.json()
    if fmt == "csv":
        rows = run.csv()
        assert rows, run.out
        return rows
    header = run.out.splitlines()[0]
    assert header == header.upper(), header  # a table opens with its column names
    return run.out


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
async def test_every_command_in_every_format(
    evctl: Evctl, central: Central, fleet: list[str], ended_session, fmt: str
) -> None:
    online, offline = fleet
    central.db.save_session(ended_session("s-1", online, "D1", Outcome.COMPLETED, time.time()))
    for args in (
        ("whoami",),
        ("summary",),
        ("cps",),
        ("cps", "--state", "ACTIVE"),
        ("cp", online),
        ("sessions",),
        ("sessions", "--cp", online),
        ("stop", online),
        ("resume", online),
        ("stop", "--all"),
        ("resume", "--all"),
        ("price", online, "0.33"),
        ("reset", offline),
        ("enroll", f"D-{fmt}"),
        ("drivers",),
        ("revoke", f"D-{fmt}"),
        ("cps", "reset", offline),
        ("drivers", "add", f"E-{fmt}"),
        ("drivers", "list"),
        ("drivers", "revoke", f"E-{fmt}"),
    ):
        _parsed(await evctl(*args, "-o", fmt), fmt)
    assert central.registry.cps[online].price == 0.33


async def test_drivers_are_enrolled_listed_and_revoked(evctl: Evctl, central: Central) -> None:
    enrolled = await evctl("enroll", "D-ctl", "-o", "json")
    assert enrolled.code == 0, enrolled.err
    secret = enrolled.json()["secret"]  # type: ignore[index]
    assert len(secret) == 64 and central.keys.driver_key("D-ctl") is not None
    again = await evctl("enroll", "D-ctl")
    assert again.code != 0 and "already enrolled" in again.err
    listed = (await evctl("drivers", "-o", "csv")).csv()
    assert [(d["driver_id"], d["enrolled_by"]) for d in listed] == [("D-ctl", "operator")]
    assert secret not in (await evctl("drivers", "-o", "json")).out  # no keys in a listing
    revoked = await evctl("revoke", "D-ctl")
    assert revoked.code == 0 and central.keys.driver_key("D-ctl") is None
    assert (await evctl("revoke", "D-ctl")).code != 0  # nothing left to revoke


async def test_the_long_forms_name_their_action(evctl: Evctl, central: Central) -> None:
    """`drivers add|list|revoke ID` and `cps reset ID`, beside the short forms."""
    added = await evctl("drivers", "add", "D-long", "-o", "json")
    assert added.code == 0, added.err
    assert central.keys.driver_key("D-long") is not None
    assert [d["driver_id"] for d in (await evctl("drivers", "list", "-o", "csv")).csv()] == [
        "D-long"
    ]
    assert (await evctl("drivers", "revoke", "D-long")).code == 0
    assert central.keys.driver_key("D-long") is None
    missing = await evctl("drivers", "add")
    assert missing.code == 2 and "add needs an ID" in missing.err
    stray = await evctl("cps", "list", "CP-1")
    assert stray.code == 2 and "unexpected ID" in stray.err
    unknown = await evctl("cps", "reset", "CP-nobody")
    assert unknown.code != 0
