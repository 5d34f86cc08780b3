"""The CP secret file: written atomically with mode 0600, read back, bad files refused."""

from __future__ import annotations

import stat

import pytest
from evmonitor.credentials import SecretStore
from evproto import auth
from evproto.errors import ConfigError


def test_a_missing_file_means_no_secret(tmp_path):
    assert SecretStore(tmp_path / "CP-0.secret").load() is None


def test_save_writes_mode_0600_and_load_reads_it_back(tmp_path):
    store = SecretStore(tmp_path / "state" / "CP-0.secret")
    secret = auth.new_secret()
    store.save(secret)
    assert store.load() == secret
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


def test_save_replaces_an_old_file_and_leaves_no_temporary_behind(tmp_path):
    path = tmp_path / "CP-0.secret"
    path.write_text(auth.new_secret())
    path.chmod(0o644)
    store = SecretStore(path)
    secret = auth.new_secret()
    store.save(secret)
    assert store.load() == secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["CP-0.secret"]


@pytest.mark.parametrize(
    "content",
    [b"", b"not hex at all\n", b"abc\n", b"\xff\xfe", b"a" * 5000],
    ids=["empty", "text", "odd", "binary", "huge"],
)
def test_a_file_that_holds_no_secret_is_a_configuration_error(tmp_path, content):
    path = tmp_path / "CP-0.secret"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="does not hold a CP secret"):
        SecretStore(path).load()


def test_an_unwritable_state_dir_is_a_configuration_error(tmp_path):
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(ConfigError, match="cannot store the CP secret"):
        SecretStore(blocker / "CP-0.secret").save(auth.new_secret())
