"""A SQLite database the user cannot write (issue 11, finding 6): exit 2, one line, the fix.

File modes do not stop root, and the suite may run as root: then the checks run with the
effective uid of `nobody` (os.seteuid, given back after), so the kernel refuses the writes as
it would refuse an ordinary user's. As any other user, a directory without write permission
does it.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from cli_runner import run_cli
from igsync.errors import ConfigError, StoreConfigError
from igsync.store.sqlite import SQLiteStore


async def open_and_close(path: Path) -> None:
    async with SQLiteStore(path):
        pass


@contextmanager
def read_only_directory() -> Iterator[Path]:
    """A directory holding an igsync database (`igsync.db`, in WAL mode, closed) whose
    directory the user of the `as_user` block cannot write: SQLite cannot create
    igsync.db-wal and igsync.db-shm there. The file itself stays writable."""
    # Not under pytest's tmp_path: its parents are root-only, and `nobody` must reach the file.
    root = Path(tempfile.mkdtemp(prefix="igsync-ro-"))
    try:
        path = root / "igsync.db"
        asyncio.run(open_and_close(path))
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(path, nobody.pw_uid, nobody.pw_gid)  # its owner may write it...
            root.chmod(0o755)  # ...but not the directory, which root owns
        else:
            root.chmod(0o555)
        yield root
    finally:
        root.chmod(0o755)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def as_user() -> Iterator[None]:
    """The block runs as an ordinary user: as `nobody` when this process is root."""
    if os.geteuid() != 0:
        yield
        return
    try:
        nobody = pwd.getpwnam("nobody").pw_uid
    except KeyError:
        pytest.skip("running as root and there is no `nobody` user to drop to")
    os.seteuid(nobody)
    try:
        yield
    finally:
        os.seteuid(0)


def test_opening_a_database_in_a_read_only_directory_is_a_setting_to_fix() -> None:
    with read_only_directory() as root, as_user():
        path = root / "igsync.db"
        with pytest.raises(StoreConfigError) as raised:
            asyncio.run(open_and_close(path))
    message = str(raised.value)
    assert message.startswith(f"SQLite database {path} is read-only for this user (")
    assert "attempt to write a readonly database" in message
    assert "make the file and its directory writable by this user" in message
    assert "igsync.db-wal and igsync.db-shm" in message
    assert raised.value.exit_code == 2


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A CLI run in `tmp_path`, with no database or env account but what the test gives."""
    for name in ("IGSYNC_DATABASE_URL", "IG_ACCOUNT_ID", "IG_LONG_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_sync_all_on_a_read_only_database_exits_2_with_one_line(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The same command on a writable file first: every module it imports is loaded while
    # this process may still read the virtualenv (`nobody` may not).
    code, _, _ = run_cli(
        monkeypatch, capsys, "--db", f"sqlite:///{in_tmp}/ok.db", "sync-all", "--allow-empty"
    )
    assert code == 0
    with read_only_directory() as root, as_user():
        monkeypatch.chdir(root)
        monkeypatch.setenv("XDG_CONFIG_HOME", str(root))  # the suite's own is root's, not nobody's
        url = f"sqlite:///{root}/igsync.db"
        code, out, err = run_cli(monkeypatch, capsys, "--db", url, "sync-all")
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith(f"igsync: error: SQLite database {root}/igsync.db is read-only")
    assert "make the file and its directory writable by this user" in err
    assert "Traceback" not in err


def test_a_database_file_owned_by_another_user_is_a_setting_to_fix() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs a file owned by another user: only root can make one here")
    root = Path(tempfile.mkdtemp(prefix="igsync-ro-"))
    try:
        path = root / "igsync.db"
        asyncio.run(open_and_close(path))
        path.chmod(0o644)  # root's file, readable by all, writable by root alone
        root.chmod(0o777)  # the directory is not what stops the write here
        with as_user(), pytest.raises(ConfigError) as raised:
            asyncio.run(open_and_close(path))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    message = str(raised.value)
    assert message.startswith(f"cannot open SQLite database {path}: Permission denied")
    assert "point --db or IGSYNC_DATABASE_URL at a writable file" in message
    assert raised.value.exit_code == 2


async def tokens_read(path: Path) -> int:
    async with SQLiteStore(path, access="read") as store:
        return len(await store.list_tokens())


def test_a_database_no_one_may_write_reads_in_a_read_only_directory() -> None:
    """A copy made read-only for everyone (`chmod a-w`), in a directory this user may not
    write: the commands that only read open it as it is, creating nothing beside it."""
    with read_only_directory() as root:
        path = root / "igsync.db"
        path.chmod(0o444)
        with as_user():
            assert asyncio.run(tokens_read(path)) == 0
        assert [p.name for p in root.iterdir()] == ["igsync.db"]
        # tokens live in it: its owner's read still takes group and other bits off
        assert stat.S_IMODE(path.stat().st_mode) == 0o400


def test_the_commands_that_read_work_on_a_copy_no_one_may_write(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = [["accounts", "list", "--json"], ["export", "--format", "ndjson"], ["db", "check"]]
    for command in commands:  # loads every module while this process may read the venv
        run_cli(monkeypatch, capsys, "--db", f"sqlite:///{in_tmp}/ok.db", *command)
    with read_only_directory() as root:
        (root / "igsync.db").chmod(0o444)
        with as_user():
            monkeypatch.chdir(root)
            monkeypatch.setenv("XDG_CONFIG_HOME", str(root))
            said = [
                run_cli(monkeypatch, capsys, "--db", f"sqlite:///{root}/igsync.db", *command)
                for command in commands
            ]
    assert [code for code, _, _ in said] == [0, 0, 0], said
    assert said[0][1].strip() == "[]"


def test_a_writable_database_in_a_read_only_directory_says_why_it_cannot_be_read() -> None:
    with read_only_directory() as root, as_user(), pytest.raises(StoreConfigError) as raised:
        asyncio.run(tokens_read(root / "igsync.db"))
    message = str(raised.value)
    assert message.startswith(f"SQLite database {root}/igsync.db cannot be read by this user (")
    assert "igsync.db-shm, which this user may not create" in message
    assert "`chmod a-w`" in message
    assert raised.value.exit_code == 2


def test_a_read_only_file_in_a_writable_directory_reads(tmp_path: Path) -> None:
    path = tmp_path / "igsync.db"
    asyncio.run(open_and_close(path))
    path.chmod(0o400)
    assert asyncio.run(tokens_read(path)) == 0


def test_tightening_a_database_never_adds_a_permission(tmp_path: Path) -> None:
    """Group and other bits come off; a file its owner made read-only stays read-only."""
    path = tmp_path / "igsync.db"
    asyncio.run(open_and_close(path))
    path.chmod(0o444)
    asyncio.run(read_only_ok(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o400


async def read_only_ok(path: Path) -> None:
    """Open `path` for a read as root may (a read-only file's mode does not stop root)."""
    if os.geteuid() != 0:
        pytest.skip("a read-only file cannot be opened for writing by its owner")
    async with SQLiteStore(path) as store:
        assert await store.list_tokens() == []


def test_a_database_shared_through_its_group_opens_and_keeps_its_mode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Another user's file, writable through its group: igsync may use it but not chmod it;
    it says the tokens are as readable as the file instead of refusing to open."""
    if os.geteuid() != 0:
        pytest.skip("needs a file owned by another user: only root can make one here")
    root = Path(tempfile.mkdtemp(prefix="igsync-group-"))
    try:
        path = root / "igsync.db"
        asyncio.run(open_and_close(path))
        for file in root.iterdir():
            file.chmod(0o660)  # root's, and its group's: `as_user` keeps root's group
        root.chmod(0o777)
        with as_user(), caplog.at_level("WARNING", logger="igsync.store.sqlite"):
            asyncio.run(open_and_close(path))
        assert stat.S_IMODE(path.stat().st_mode) == 0o660
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert f"SQLite database {path} is open to its group or others (mode 0660)" in caplog.text
