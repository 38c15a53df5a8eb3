"""`igsync db init` on Supabase, through the CLI's own entry point against the fake PostgREST.

PostgREST cannot run DDL, so `db init` prints the SQL and says how to apply it; its exit code
tells a script whether the tables are there. Only a missing schema is reported that way: a bad
key is an error of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import igsync.store
from cli_runner import run_cli
from fake_postgrest import SERVICE_KEY, SUPABASE_URL, FakePostgrest
from igsync.store import Store

V1_SQLITE = Path(__file__).parent / "fixtures" / "schema_v1_sqlite.sql"


@pytest.fixture
def project(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[FakePostgrest]:
    # True: the current schema; False: none; "v1": only the first migration file applied.
    fake = FakePostgrest(with_schema=request.param is True)
    if request.param == "v1":
        fake.db.executescript(V1_SQLITE.read_text())

    def open_fake(url: str, key: str) -> Store:
        assert url == SUPABASE_URL
        return fake.open(key)

    monkeypatch.setattr(igsync.store, "open_supabase_store", open_fake)
    monkeypatch.setenv("SUPABASE_URL", SUPABASE_URL)
    monkeypatch.setenv("SUPABASE_KEY", SERVICE_KEY)
    monkeypatch.delenv("IGSYNC_DATABASE_URL", raising=False)
    monkeypatch.chdir(request.getfixturevalue("tmp_path"))  # no stray .env
    yield fake
    fake.close()


@pytest.mark.parametrize("project", [True], indirect=True)
def test_db_init_with_the_schema_applied_prints_it_and_succeeds(
    project: FakePostgrest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "db", "init")
    assert code == 0
    assert "create table if not exists instagram_insights" in out
    assert "already current" in err
    assert SERVICE_KEY not in out + err


@pytest.mark.parametrize("project", [False], indirect=True)
def test_db_init_without_tables_prints_the_sql_and_exits_1(
    project: FakePostgrest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "db", "init", "--json")
    assert code == 1
    document = json.loads(out)
    assert document["initialized"] is False
    assert "create table if not exists user_tokens" in document["sql"]
    assert "SQL editor" in document["how"]
    assert SERVICE_KEY not in out + err


@pytest.mark.parametrize("project", [True], indirect=True)
def test_db_init_with_a_wrong_key_blames_the_key_not_the_schema(
    project: FakePostgrest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SUPABASE_KEY", "eyJ-not-the-right-key-0123456789")
    code, out, err = run_cli(monkeypatch, capsys, "db", "init")
    assert code == 1
    assert out == ""
    assert err.startswith("igsync: error: ")
    assert "bad or expired" in err
    assert "not-the-right-key" not in err


@pytest.mark.parametrize("project", ["v1"], indirect=True)
def test_db_init_on_a_schema_behind_prints_the_sql_names_the_migration_and_exits_1(
    project: FakePostgrest, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_cli(monkeypatch, capsys, "db", "init")
    assert code == 1
    assert "add column if not exists local_date" in out
    assert "at version 1" in err
    assert "20261130000000_igsync_local_date.sql" in err
    assert SERVICE_KEY not in out + err
