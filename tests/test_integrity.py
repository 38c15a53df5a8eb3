"""Integrity (issue 11, finding 9): `igsync db check`, and a damaged SQLite file stops a run.

The damage is real: pages of a real database file overwritten, as a failing disk or a copy
taken mid-write leaves them.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from pydantic import SecretStr

from cli_runner import run_cli
from fake_postgrest import FakePostgrest
from igsync.catalogue import DEFAULT_METRICS
from igsync.errors import StoreCorruptError
from igsync.graph import GraphClient
from igsync.integrity import check_database
from igsync.models import InsightRow, UserToken
from igsync.simulator import SimAccount, Simulator, serve_in_thread
from igsync.store import Store
from igsync.store.postgres import PostgresStore
from igsync.store.sqlite import SQLiteStore
from igsync.sync_all import sync_all
from igsync.window import plan_window

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = [f"1784160000000{i:04d}" for i in range(1, 9)]


def insight(i: int, account: str = ACCOUNTS[0]) -> InsightRow:
    return InsightRow(
        u_id=uuid4(),
        account_id=account,
        metric="reach",
        metric_type="time_series",
        period="day",
        end_time=datetime(2026, 1, 1, 8, tzinfo=UTC).replace(day=1 + i % 28, month=1 + i // 28),
        value=i,
    )


async def filled_database(path: Path, sim: Simulator | None = None) -> None:
    """A database with a few pages of insights and, for `sim`, a token per account."""
    async with SQLiteStore(path) as store:
        await store.upsert_insights([insight(i) for i in range(300)])
        if sim is not None:
            for account in ACCOUNTS:
                token = SecretStr(sim.issue_token(account))
                row = UserToken(u_id=uuid4(), access_token=token, account_id=account)
                await store.save_token(row)


def overwrite_pages(path: Path, object_name: str, pages: int = 1, offset: int = 0) -> None:
    """Fill `pages` pages from the root page of table or index `object_name` (+ `offset`) with
    0xff bytes: not a b-tree page type SQLite knows, so any read of them is SQLITE_CORRUPT.
    The file is closed (WAL checkpointed into it) when this runs."""
    with closing(sqlite3.connect(path)) as conn:
        (page_size,) = conn.execute("pragma page_size").fetchone()
        (root,) = conn.execute(
            "select rootpage from sqlite_master where name = ?", (object_name,)
        ).fetchone()
    assert not Path(f"{path}-wal").exists()  # nothing left outside the main file
    with path.open("r+b") as file:
        file.seek((root - 1 + offset) * page_size)
        file.write(b"\xff" * page_size * pages)


def test_a_sound_sqlite_file_has_no_problems(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ok.db"
    asyncio.run(filled_database(path))
    url = f"sqlite:///{path}"
    code, out, err = run_cli(monkeypatch, capsys, "--db", url, "db", "check", "--json")
    assert (code, err) == (0, "")
    assert json.loads(out) == {"ok": True, "database": url, "quick": False, "problems": []}
    code, out, _ = run_cli(monkeypatch, capsys, "--db", url, "db", "check", "--quick")
    assert code == 0
    assert out.startswith("ok: no problems found in sqlite:///")


def test_overwritten_index_pages_are_found_by_db_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "damaged.db"
    asyncio.run(filled_database(path))
    # a leaf of the unique key's index: the table reads fine, only the full check sees it
    overwrite_pages(path, "sqlite_autoindex_instagram_insights_1", offset=1)
    url = f"sqlite:///{path}"

    code, out, err = run_cli(monkeypatch, capsys, "--db", url, "db", "check", "--json")
    assert code == 1
    assert err == ""
    report = json.loads(out)
    assert report["ok"] is False
    assert report["problems"]
    assert all(p.startswith("integrity_check") for p in report["problems"])

    code, out, _ = run_cli(monkeypatch, capsys, "--db", url, "db", "check")
    assert code == 1
    assert "problem: integrity_check" in out
    assert "restore the database from a backup" in out


def test_doctor_runs_the_quick_check_and_fails_on_a_damaged_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "damaged.db"
    asyncio.run(filled_database(path))
    overwrite_pages(path, "instagram_insights")
    code, out, _ = run_cli(monkeypatch, capsys, "--db", f"sqlite:///{path}", "doctor", "--json")
    assert code == 1
    (integrity,) = [c for c in json.loads(out)["checks"] if c["name"] == "integrity"]
    assert integrity["status"] == "fail"
    assert "quick_check" in integrity["detail"]
    assert "`igsync db check` runs the full check" in integrity["fix"]


@pytest.mark.anyio
async def test_a_file_that_is_not_a_database_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """db check reports it (its header may be what a failing disk overwrote); every other
    command refuses it as a wrong --db, exit 2 (tests/test_missing_database.py)."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    report = await check_database(SQLiteStore(path), f"sqlite:///{path}")
    assert not report.ok
    (problem,) = report.problems
    assert "notes.db is not a SQLite database (file is not a database)" in problem
    assert "point --db or IGSYNC_DATABASE_URL at an igsync database" in problem
    assert "restore it from a backup" in problem


@pytest.mark.anyio
async def test_a_file_with_sqlites_header_and_garbage_after_it_is_damaged(tmp_path: Path) -> None:
    """SQLite's header string, then bytes SQLite refuses (SQLITE_NOTADB): a damaged
    database, not another kind of file."""
    path = tmp_path / "half.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4080)
    with pytest.raises(StoreCorruptError, match="is damaged \\(file is not a database\\)"):
        async with SQLiteStore(path):
            pass
    report = await check_database(SQLiteStore(path), f"sqlite:///{path}")
    (problem,) = report.problems
    assert "is damaged" in problem
    assert "restore it from a backup" in problem


@pytest.mark.anyio
async def test_a_damaged_table_stops_sync_all_with_what_to_do(tmp_path: Path) -> None:
    sim = Simulator([SimAccount(a, tz="Asia/Tokyo") for a in ACCOUNTS], now=lambda: NOW)
    path = tmp_path / "damaged.db"
    await filled_database(path, sim)
    overwrite_pages(path, "instagram_insights")  # its root: every insert reads it

    async with (
        SQLiteStore(path) as store,
        GraphClient(base_url="http://sim", version="v27.0", transport=sim.transport()) as graph,
    ):
        report = await sync_all(
            graph, store, metrics=DEFAULT_METRICS, plan=plan_window(NOW), now=NOW, concurrency=1
        )

    assert not report.success
    assert report.accounts_ok == 0
    assert report.stopped is not None
    assert report.stopped.startswith(f"SQLite database {path} is damaged")
    assert "database disk image is malformed" in report.stopped
    assert "run `igsync db check`" in report.stopped
    assert "restore it from a backup" in report.stopped
    first = report.results[0]
    assert first.attempted
    assert first.total_inserted == 0  # the write failed: nothing counted
    assert first.errors[0].startswith(f"store: SQLite database {path} is damaged")
    # concurrency 1: the account written, at most one gathered meanwhile and one gathering
    called = {r.path.split("/")[2] for r in sim.requests}
    assert len(called) <= 3
    assert report.accounts_not_attempted >= len(ACCOUNTS) - 3
    assert report.accounts_total == len(ACCOUNTS)


@pytest.mark.anyio
async def test_opening_a_file_damaged_where_it_starts_says_so(tmp_path: Path) -> None:
    """Its header string is gone, but the rest is still a database's (whole pages, the
    schema page after the header): damaged, not "not a SQLite database"."""
    path = tmp_path / "damaged.db"
    await filled_database(path)
    with path.open("r+b") as file:
        file.write(b"\xff" * 100)  # SQLite's header: "file is not a database"
    with pytest.raises(StoreCorruptError, match=r"is damaged .*restore it from a backup"):
        async with SQLiteStore(path):
            pass


@pytest.mark.anyio
async def test_every_store_checks_clean_when_fresh(store: Store) -> None:
    assert await store.check_integrity() == []


@pytest.mark.anyio
async def test_postgres_finds_a_missing_unique_key_and_an_invalid_index(
    fresh_postgres_url: str,
) -> None:
    async with PostgresStore(fresh_postgres_url) as store:
        assert await store.check_integrity() == []
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        (constraint,) = conn.execute(
            "select conname from pg_constraint where conrelid = 'instagram_media'::regclass"
            " and contype = 'u'"
        ).fetchone() or ("",)
        conn.execute(f'alter table instagram_media drop constraint "{constraint}"')
        # A unique index built concurrently over duplicate values fails and stays, invalid.
        for _ in range(2):
            conn.execute(
                "insert into instagram_sync_logs (run_id, account_id, started_at, finished_at,"
                " status, total_inserted, total_errors, errors, token_refreshed, streams)"
                " values (gen_random_uuid(), '1', now(), now(), 'ok', 0, 0, '[]', false, '[]')"
            )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "create unique index concurrently sync_logs_one_status"
                " on instagram_sync_logs (status)"
            )
    async with PostgresStore(fresh_postgres_url) as store:
        problems = await store.check_integrity()
    assert problems == [
        "instagram_media has no unique index on (u_id, account_id, media_id): its writes"
        " cannot upsert; create it again (`alter table instagram_media add unique (u_id,"
        " account_id, media_id)`; `db init` applies only migrations not applied yet)",
        "index sync_logs_one_status on instagram_sync_logs is invalid (a CREATE INDEX"
        " CONCURRENTLY or REINDEX failed): run `REINDEX INDEX sync_logs_one_status`",
    ]
    # what the first line says to run is what fixes it
    fix = problems[0].split("`")[1]
    with psycopg.connect(fresh_postgres_url, autocommit=True) as conn:
        conn.execute(fix)  # type: ignore[arg-type]
    async with PostgresStore(fresh_postgres_url) as store:
        assert [p for p in await store.check_integrity() if "instagram_media" in p] == []


def test_sync_all_on_a_damaged_file_says_so_once_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = Simulator([SimAccount(a, tz="Asia/Tokyo") for a in ACCOUNTS])
    path = tmp_path / "damaged.db"
    asyncio.run(filled_database(path, sim))
    overwrite_pages(path, "instagram_insights")
    monkeypatch.chdir(tmp_path)
    for name in ("IG_ACCOUNT_ID", "IG_LONG_TOKEN", "IGSYNC_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with serve_in_thread(sim) as served:
        monkeypatch.setenv("IGSYNC_GRAPH_URL", served.graph_url)
        monkeypatch.setenv("IGSYNC_INSTAGRAM_URL", served.instagram_url)
        monkeypatch.setenv("NO_COLOR", "1")
        args = ("--db", f"sqlite:///{path}", "sync-all", "--concurrency", "1")
        code, out, _ = run_cli(monkeypatch, capsys, *args, "--json")
        assert code == 1
        report = json.loads(out)
        assert report["success"] is False
        assert report["stopped"].startswith(f"SQLite database {path} is damaged (")
        assert report["accounts_not_attempted"] >= len(ACCOUNTS) - 3
        skipped = [r for r in report["results"] if not r["attempted"]]
        assert len(skipped) == report["accounts_not_attempted"]

        code, out, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 1
    text = " ".join(out.split())  # rich wraps long lines
    assert f"run stopped: SQLite database {path} is damaged (" in text
    assert "account(s) not attempted (nothing was sent to Meta for them)" in text
    assert text.count("not attempted:") == 0  # one line for them all, not one each


@pytest.mark.anyio
@pytest.mark.parametrize("table", ["instagram_media", "igsync_schema_migrations"])
async def test_a_supabase_schema_missing_a_table_is_a_problem_found(
    fake_postgrest: FakePostgrest, table: str
) -> None:
    fake_postgrest.drop_table(table)  # the version record: opening itself finds it behind
    report = await check_database(fake_postgrest.open(), "supabase")
    assert not report.ok
    (problem,) = report.problems
    assert "`igsync db schema --dialect postgres`" in problem  # what to apply, and how
