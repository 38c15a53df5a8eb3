"""A mistyped SQLite path (review finding 1): the commands that only read never create it.

`accounts list`, `report`, `export`, `db check`, the commands with nothing to change in a file
that is not there (`accounts remove`, `refresh-token`, `accounts rekey`) and dry runs on a
SQLite path with no file are exit 2 with one line naming the path and the fix, and leave no
file and no directory behind (a cron `refresh-token --all` on a mistyped path was an empty
success every night); the commands that write (`db init`, `fetch`, `accounts add`…) still
create the database on first use.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import run_cli

CREATE_NOTHING = [
    pytest.param(["accounts", "list"], id="accounts-list"),
    pytest.param(["accounts", "list", "--json"], id="accounts-list-json"),
    pytest.param(["report"], id="report"),
    pytest.param(["report", "--json"], id="report-json"),
    pytest.param(["export"], id="export"),
    pytest.param(["export", "--output", "out.csv"], id="export-output"),
    pytest.param(["db", "check"], id="db-check"),
    pytest.param(["db", "check", "--json"], id="db-check-json"),
    pytest.param(
        ["accounts", "remove", "--user", "7d6f3b8e-1c2a-4f5e-9a0b-123456789abc"],
        id="accounts-remove",
    ),
    pytest.param(["refresh-token", "--all"], id="refresh-token"),
    pytest.param(["refresh-token", "--all", "--dry-run", "--json"], id="refresh-token-dry-run"),
    pytest.param(["accounts", "rekey", "--dry-run"], id="accounts-rekey-dry-run"),
    pytest.param(
        ["fetch", "--user", "7d6f3b8e-1c2a-4f5e-9a0b-123456789abc", "--dry-run"],
        id="fetch-dry-run",
    ),
    pytest.param(["sync-all", "--dry-run", "--json"], id="sync-all-dry-run"),
]


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory, with no database configured but what the test gives."""
    monkeypatch.chdir(tmp_path)
    for name in ("IGSYNC_DATABASE_URL", "SUPABASE_URL", "SUPABASE_KEY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _tree(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


@pytest.mark.parametrize("command", CREATE_NOTHING)
@pytest.mark.parametrize("where", ["typo.db", "nonexist/dir/x.db"])
def test_a_command_with_nothing_to_write_on_a_missing_file_creates_nothing_and_exits_2(
    in_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    where: str,
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{where}", *command)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert f"no SQLite database at {where}" in err
    assert "--db / IGSYNC_DATABASE_URL" in err
    assert "`igsync db init`" in err
    assert _tree(in_tmp) == []  # no file, no -wal/-shm, no directory, no export output


def test_the_variable_is_checked_the_same_way(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IGSYNC_DATABASE_URL", "sqlite:///nonexist/typo.db")
    code, out, err = run_cli(monkeypatch, capsys, "accounts", "list")
    assert (code, out) == (2, "")
    assert "no SQLite database at nonexist/typo.db" in err
    assert _tree(in_tmp) == []


def test_an_empty_variable_is_unset_and_the_default_database_is_not_created(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`IGSYNC_DATABASE_URL=` (as .env.example ships it) means the default, as README says;
    a read-only command then names the default path instead of creating an empty file."""
    monkeypatch.setenv("IGSYNC_DATABASE_URL", "")
    data_home = Path(in_tmp / "data")
    monkeypatch.setenv("XDG_DATA_HOME", str(data_home))
    code, out, err = run_cli(monkeypatch, capsys, "accounts", "list")
    assert (code, out) == (2, "")
    default = data_home / "igsync" / "igsync.db"
    assert err == (
        f"igsync: error: no SQLite database at {default}, the default (IGSYNC_DATABASE_URL and"
        " SUPABASE_URL are unset or empty): point --db or IGSYNC_DATABASE_URL at your"
        " database, or create this one with `igsync db init` or a first `igsync fetch`\n"
    )
    assert _tree(in_tmp) == []


def test_the_commands_that_write_still_create_the_database(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "sqlite:///new/dir/first.db"
    code, _, err = run_cli(monkeypatch, capsys, "--db", url, "db", "init")
    assert (code, err) == (0, "")
    path = in_tmp / "new" / "dir" / "first.db"
    assert path.is_file()
    assert path.stat().st_mode & 0o777 == 0o600
    assert (in_tmp / "new" / "dir").stat().st_mode & 0o777 == 0o700
    # and once it is there, the commands that read use it
    code, out, err = run_cli(monkeypatch, capsys, "--db", url, "accounts", "list", "--json")
    assert (code, out.strip(), err) == (0, "[]", "")
    code, out, _ = run_cli(monkeypatch, capsys, "--db", url, "db", "check")
    assert code == 0
    assert out.startswith("ok: no problems found")


def test_a_store_opened_for_reading_creates_nothing(tmp_path: Path) -> None:
    """The core's flag (store.open_store), for the Python API too."""
    import asyncio

    from igsync.errors import ConfigError
    from igsync.store import open_store

    async def enter() -> None:
        async with open_store(f"sqlite:///{tmp_path}/a/b.db", access="read"):
            pass

    with pytest.raises(ConfigError, match="no SQLite database at"):
        asyncio.run(enter())
    assert _tree(tmp_path) == []


NOT_A_DATABASE = b"<!doctype html>\n<html><body>my report</body></html>\n" * 50


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(["accounts", "list"], id="accounts-list"),
        pytest.param(["report", "--json"], id="report"),
        pytest.param(["export"], id="export"),
        pytest.param(["db", "init"], id="db-init"),
        pytest.param(
            ["accounts", "remove", "--user", "7d6f3b8e-1c2a-4f5e-9a0b-123456789abc"],
            id="accounts-remove",
        ),
    ],
)
def test_a_file_that_is_not_a_database_is_a_wrong_setting(
    in_tmp: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """Review finding 5: `--db sqlite:///r.html` is exit 2 saying what it is, not "damaged,
    restore from a backup" exit 1; the file is left as it was."""
    (in_tmp / "r.html").write_bytes(NOT_A_DATABASE)
    (in_tmp / "r.html").chmod(0o644)
    code, out, err = run_cli(monkeypatch, capsys, "--db", "sqlite:///r.html", *command)
    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("igsync: error: r.html is not a SQLite database (file is not a ")
    assert "point --db or IGSYNC_DATABASE_URL at an igsync database" in err
    assert "stop writing to it" not in err  # not the damaged database's message
    assert (in_tmp / "r.html").read_bytes() == NOT_A_DATABASE
    assert (in_tmp / "r.html").stat().st_mode & 0o777 == 0o644  # its mode too
    assert sorted(p.name for p in in_tmp.iterdir()) == ["r.html"]  # no -wal, no -shm


def test_db_check_reports_a_file_that_is_not_a_database_as_a_problem(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """db check is where a user goes to ask "is this sound?": it answers no (exit 1), in its
    report, since a SQLite header a failing disk overwrote looks the same."""
    (in_tmp / "r.html").write_bytes(NOT_A_DATABASE)
    code, out, err = run_cli(
        monkeypatch, capsys, "--db", "sqlite:///r.html", "db", "check", "--json"
    )
    assert (code, err) == (1, "")
    report = json.loads(out)
    assert report["ok"] is False
    (problem,) = report["problems"]
    assert problem.startswith("r.html is not a SQLite database")


def test_doctor_says_which_setting_to_fix_for_a_file_that_is_not_a_database(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (in_tmp / "r.html").write_bytes(NOT_A_DATABASE)
    code, out, _ = run_cli(
        monkeypatch, capsys, "--db", "sqlite:///r.html", "doctor", "--no-graph", "--json"
    )
    assert code == 1
    (database,) = [c for c in json.loads(out)["checks"] if c["name"] == "database"]
    assert database["status"] == "fail"
    assert database["detail"].startswith("r.html is not a SQLite database")
    assert "--db or IGSYNC_DATABASE_URL" in database["fix"]
    assert "password" not in database["fix"]
    assert (in_tmp / "r.html").read_bytes() == NOT_A_DATABASE


def test_an_existing_database_is_still_tightened_to_0600_by_a_read(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Tokens live in it: opening it to read still makes it owner-only (only a file SQLite
    refuses is left as it was)."""
    assert run_cli(monkeypatch, capsys, "--db", "sqlite:///a.db", "db", "init")[0] == 0
    (in_tmp / "a.db").chmod(0o644)
    code, _, _ = run_cli(monkeypatch, capsys, "--db", "sqlite:///a.db", "accounts", "list")
    assert code == 0
    assert (in_tmp / "a.db").stat().st_mode & 0o777 == 0o600


def test_an_empty_accounts_list_says_how_to_add_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("IG_ACCOUNT_ID", "IG_LONG_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    assert run_cli(monkeypatch, capsys, "--db", url, "db", "init")[0] == 0
    code, out, err = run_cli(monkeypatch, capsys, "--db", url, "accounts", "list")
    assert (code, err) == (0, "")
    assert out.startswith("no accounts in this database: add one with `igsync accounts add")
    code, out, _ = run_cli(monkeypatch, capsys, "--db", url, "accounts", "list", "--json")
    assert (code, out) == (0, "[]\n")
