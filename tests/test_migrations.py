"""Numbered schema migrations, on SQLite and on a real PostgreSQL server.

A database made by igsync before it had migrations (migration 1's tables, no version record) is
recognised as version 1 and upgraded in place: every row stays, new columns are filled, the
version record ends at the latest migration. Opening again applies nothing twice, and stores
opening an old database together all succeed.
A database at version 2 upgrades to 3 the same way. The "old" DDL comes from files frozen when
it shipped, not from the code under test: supabase/migrations/ (one file per migration) and
tests/fixtures/schema_v1_sqlite.sql, schema_v2_sqlite.sql (`igsync db schema --dialect sqlite`
as igsync printed it at versions 1 and 2).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import psycopg
import pytest

from igsync.errors import StoreConfigError, StoreError
from igsync.local_day import day_label
from igsync.models import InsightRow
from igsync.store import Store
from igsync.store.postgres import PostgresStore
from igsync.store.schema import LATEST, MIGRATIONS, migration_sql, schema_sql
from igsync.store.sqlite import SQLiteStore
from igsync.store.tables import UPSERTED, Table
from postgres_server import fresh_database, login_role

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
V1_POSTGRES = (ROOT / "supabase" / "migrations" / "20261125000000_igsync_schema.sql").read_text()
V1_SQLITE = (Path(__file__).parent / "fixtures" / "schema_v1_sqlite.sql").read_text()
V2_POSTGRES = (
    ROOT / "supabase" / "migrations" / "20261130000000_igsync_local_date.sql"
).read_text()
V2_SQLITE = (Path(__file__).parent / "fixtures" / "schema_v2_sqlite.sql").read_text()

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
TOKEN_ID = UUID("00000000-0000-4000-8000-0000000070c1")
OLD_TOKEN = "EAAG-written-by-igsync-before-migrations"

# (account, period, end_time as igsync stored it, value, the local date migration 2 gives it)
OLD_INSIGHTS = [
    ("la", "day", "2026-11-20T08:00:00+00:00", 10, "2026-11-19"),  # Los Angeles
    ("kolkata", "day", "2026-11-20T18:30:00+00:00", 20, "2026-11-20"),  # Kolkata
    ("utc", "day", "2026-11-21T00:00:00+00:00", 30, "2026-11-20"),
    ("cutoff", "day", "2026-11-20T10:00:00+00:00", 40, "2026-11-19"),  # at 10:00: the day before
    ("cutoff", "day", "2026-11-21T10:00:01+00:00", 41, "2026-11-21"),  # a second later: its date
    ("lifetime", "lifetime", "2026-11-20T08:00:00+00:00", 50, None),  # not a daily row
]
# Portable SQL: PostgreSQL casts the quoted literals, SQLite stores them as igsync did.
OLD_ROWS = [
    f"insert into users (u_id) values ('{ALICE}')",
    "insert into user_tokens (token_id, u_id, platform, access_token, account_id, expires_at)"
    f" values ('{TOKEN_ID}', '{ALICE}', 'instagram', '{OLD_TOKEN}', '17841400000000042',"
    " '2027-01-20T12:00:00+00:00')",
    *(
        "insert into instagram_insights"
        " (u_id, account_id, metric, metric_type, period, end_time, value)"
        f" values ('{ALICE}', '{account}', 'reach', 'time_series', '{period}', '{end}', {value})"
        for account, period, end, value, _ in OLD_INSIGHTS
    ),
    "insert into instagram_sync_logs (run_id, u_id, account_id, started_at, status)"
    f" values ('{TOKEN_ID}', '{ALICE}', 'la', '2026-11-21T06:00:00+00:00', 'ok')",
]
# What igsync at version 2 wrote: the same rows, daily ones with their local_date.
V2_ROWS = [
    *OLD_ROWS[:2],
    *(
        "insert into instagram_insights"
        " (u_id, account_id, metric, metric_type, period, end_time, value, local_date)"
        f" values ('{ALICE}', '{account}', 'reach', 'time_series', '{period}', '{end}', {value},"
        f" {'null' if local is None else repr(local)})"
        for account, period, end, value, local in OLD_INSIGHTS
    ),
    OLD_ROWS[-1],
]
VERSIONS = "select version, name from igsync_schema_migrations order by version"
STREAM_TABLES = ("instagram_audience", "instagram_media", "instagram_media_insights")
INDEX = {
    "sqlite": "select name from sqlite_master where type = 'index' and name like '%local_date%'",
    "postgres": "select indexname from pg_indexes where indexname like '%local_date%'",
}


@dataclass
class Database:
    """One empty database: how to open a store on it and run SQL behind the store's back."""

    dialect: str
    open: Callable[[], Store]
    #: one statement; its rows, if it returns any
    sql: Callable[[str], Awaitable[list[tuple[Any, ...]]]]
    #: a script of several statements
    script: Callable[[str], Awaitable[object]]

    async def make_old(self) -> None:
        """Migration 1's DDL as it shipped, no version record, and rows in every table."""
        await self.script(V1_POSTGRES if self.dialect == "postgres" else V1_SQLITE)
        for statement in OLD_ROWS:
            await self.sql(statement)

    async def make_v2(self) -> None:
        """The schema at version 2 as it shipped, with rows igsync at version 2 wrote."""
        if self.dialect == "postgres":
            await self.script(V1_POSTGRES)  # `supabase db push`: one file after the other
            await self.script(V2_POSTGRES)
        else:
            await self.script(V2_SQLITE)
        for statement in V2_ROWS:
            await self.sql(statement)


def sqlite_database(path: Path) -> Database:
    async def run(query: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(path)) as conn, conn:
            return conn.execute(query).fetchall()

    async def script(text: str) -> None:
        with closing(sqlite3.connect(path)) as conn:
            conn.executescript(text)

    return Database("sqlite", lambda: SQLiteStore(path), run, script)


def postgres_database(url: str) -> Database:
    async def run(query: str) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            cursor = await conn.execute(query)
            return await cursor.fetchall() if cursor.description else []

    return Database("postgres", lambda: PostgresStore(url), run, run)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        return sqlite_database(tmp_path / "old.db")
    return postgres_database(request.getfixturevalue("fresh_postgres_url"))


def latest_versions() -> list[tuple[int, str]]:
    return [(m.version, m.name) for m in MIGRATIONS]


# --- migration 1 is what igsync shipped ---


def test_migration_1_is_the_schema_igsync_shipped_before_migrations() -> None:
    # A published migration never changes: databases out there were made from this text.
    assert MIGRATIONS[0].postgres == V1_POSTGRES
    assert MIGRATIONS[0].sqlite == V1_SQLITE


def test_migrations_are_numbered_one_by_one_and_their_names_are_plain() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1))
    assert all(m.name and "'" not in m.name for m in MIGRATIONS)


# --- upgrading a database made before migrations ---


async def test_a_database_from_before_migrations_keeps_every_row_and_ends_current(
    database: Database,
) -> None:
    await database.make_old()

    async with database.open() as store:
        rows = await store.read_insights()
        tokens = await store.list_tokens()

    assert sorted((r.account_id, r.end_time, r.value) for r in rows) == sorted(
        (account, datetime.fromisoformat(end), value) for account, _, end, value, _ in OLD_INSIGHTS
    )
    # Back-filled in the column itself (a model would fill a missing one on read) ...
    assert await database.sql(
        "select value, cast(local_date as text) from instagram_insights order by value"
    ) == [(value, local) for *_, value, local in OLD_INSIGHTS]
    # ... by exactly the rule igsync labels new rows with.
    for r in rows:
        assert r.local_date == (day_label(r.end_time) if r.period == "day" else None)
    assert await database.sql(INDEX[database.dialect]) == [("instagram_insights_local_date_idx",)]
    assert [(t.token_id, t.access_token.get_secret_value()) for t in tokens] == [
        (TOKEN_ID, OLD_TOKEN)
    ]
    assert await database.sql("select count(*) from instagram_sync_logs") == [(1,)]
    assert await database.sql(VERSIONS) == latest_versions()


async def test_an_old_database_this_user_may_not_write_is_read_as_it_is_and_says_what_to_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.db"
    old = sqlite_database(path)
    await old.make_old()
    before = path.read_bytes()
    # as for a user without write access (file modes do not stop root, who runs the suite)
    monkeypatch.setattr("igsync.store.sqlite._writable", lambda _: False)
    with pytest.raises(StoreConfigError) as raised:
        async with SQLiteStore(path, access="read"):
            pass
    assert str(raised.value) == (
        f"SQLite database {path} has the igsync schema at version 1, this igsync reads"
        f" version {LATEST}: open it once with write access (`igsync db init`) to migrate it"
    )
    assert path.read_bytes() == before


async def test_opening_again_applies_nothing_twice(database: Database) -> None:
    await database.make_old()
    async with database.open() as store:
        first = await store.read_insights()
    recorded = await database.sql("select version, applied_at from igsync_schema_migrations")

    async with database.open() as store:
        await store.init_schema()
        again = await store.read_insights()

    assert again == first
    assert await database.sql("select version, applied_at from igsync_schema_migrations") == (
        recorded
    )


async def test_an_empty_database_gets_every_migration_and_its_record(database: Database) -> None:
    async with database.open() as store:
        assert await store.read_insights() == []

    assert await database.sql(VERSIONS) == latest_versions()


async def test_stores_opening_an_old_database_together_all_succeed(database: Database) -> None:
    # `sync-all --shard K/N` workers started side by side right after igsync was upgraded.
    await database.make_old()

    async def open_and_count() -> int:
        async with database.open() as store:
            return len(await store.read_insights())

    counts = await asyncio.gather(*(open_and_count() for _ in range(6)))

    assert counts == [len(OLD_INSIGHTS)] * 6
    assert await database.sql(VERSIONS) == latest_versions()


async def test_new_rows_in_an_upgraded_database_get_their_local_date(database: Database) -> None:
    await database.make_old()
    later = datetime.fromisoformat("2026-11-22T08:00:00+00:00")

    async with database.open() as store:
        [old] = [r for r in await store.read_insights() if r.account_id == "la"]
        assert await store.upsert_insights([old.model_copy(update={"value": 11})]) == 1
        fresh = InsightRow(**{**old.model_dump(exclude={"local_date"}), "end_time": later})
        assert await store.upsert_insights([fresh]) == 1

    assert await database.sql(
        "select value, cast(local_date as text) from instagram_insights"
        " where account_id = 'la' order by value"
    ) == [(old.value, "2026-11-21"), (11, "2026-11-19")]


async def test_a_postgres_role_that_may_not_migrate_gets_one_line_saying_what_to_run(
    fresh_postgres_url: str,
) -> None:
    # Production cron after an upgrade: igsync's role holds row grants on the old tables only.
    database = postgres_database(fresh_postgres_url)
    await database.make_old()
    grants = "grant select, insert, update, delete on all tables in schema public to {role}"

    with login_role(fresh_postgres_url, grants) as cron_url, pytest.raises(StoreError) as caught:
        async with PostgresStore(cron_url):
            pass

    message = str(caught.value)
    assert message.startswith(
        f"PostgreSQL has the igsync schema at version 1, this igsync needs {LATEST}, and could"
        " not migrate it: "
    )
    assert "[42501]" in message
    assert "`igsync db init`" in message
    assert "`igsync db schema --dialect postgres`" in message
    assert "\n" not in message
    password = urlsplit(cron_url).password
    assert password
    assert password not in message
    # Nothing half-done: no version record, no new column; the owner's next open migrates.
    assert await database.sql("select to_regclass('igsync_schema_migrations')") == [(None,)]
    async with database.open() as store:
        assert len(await store.read_insights()) == len(OLD_INSIGHTS)


async def test_a_database_at_version_2_upgrades_to_3_and_keeps_every_row(
    database: Database,
) -> None:
    await database.make_v2()
    recorded = await database.sql("select version, applied_at from igsync_schema_migrations")
    assert [v for v, _ in recorded] == [1, 2]
    before = await database.sql(
        "select account_id, period, cast(end_time as text), value, cast(local_date as text)"
        " from instagram_insights order by id"
    )

    async with database.open() as store:
        rows = await store.read_insights()
        tokens = await store.list_tokens()
        assert await store.read_audience() == []
        assert await store.read_media() == []
        assert await store.read_media_insights() == []

    assert (
        await database.sql(
            "select account_id, period, cast(end_time as text), value, cast(local_date as text)"
            " from instagram_insights order by id"
        )
        == before
    )
    assert sorted((r.account_id, r.value, r.local_date) for r in rows) == sorted(
        (account, value, None if local is None else date.fromisoformat(local))
        for account, _, _, value, local in OLD_INSIGHTS
    )
    assert [t.access_token.get_secret_value() for t in tokens] == [OLD_TOKEN]
    assert await database.sql("select count(*) from instagram_sync_logs") == [(1,)]
    for table in STREAM_TABLES:
        assert await database.sql(f"select count(*) from {table}") == [(0,)]
    # Versions 1 and 2 keep their records; 3 is added.
    after = await database.sql("select version, applied_at from igsync_schema_migrations")
    assert after[:2] == recorded
    assert await database.sql(VERSIONS) == latest_versions()
    # The daily view reads the rows stored before it existed: reach per account and local date.
    assert await database.sql(
        "select account_id, cast(local_date as text), reach, profile_views from instagram_daily"
        " order by account_id, local_date"
    ) == sorted(
        (account, local, value, None) for account, _, _, value, local in OLD_INSIGHTS if local
    )


# --- the printed schema ---


async def test_the_printed_sqlite_schema_makes_what_the_store_makes(tmp_path: Path) -> None:
    # The fake Supabase runs on the printed SQLite schema: it must not drift from the store's.
    by_store = sqlite_database(tmp_path / "store.db")
    async with by_store.open():
        pass
    printed = sqlite_database(tmp_path / "printed.db")
    await printed.script(schema_sql("sqlite"))

    catalog = "select type, name, tbl_name, sql from sqlite_master order by name"
    assert await printed.sql(catalog) == await by_store.sql(catalog)
    assert await printed.sql(VERSIONS) == await by_store.sql(VERSIONS)


async def test_a_current_postgres_schema_opens_without_waiting_for_the_migration_lock(
    fresh_postgres_url: str,
) -> None:
    async with PostgresStore(fresh_postgres_url):
        pass
    async with await psycopg.AsyncConnection.connect(fresh_postgres_url, autocommit=True) as other:
        await other.execute("select pg_advisory_lock(hashtext('igsync schema'))")

        async def open_and_write() -> None:
            async with PostgresStore(fresh_postgres_url) as store:
                await store.read_insights()

        await asyncio.wait_for(open_and_write(), timeout=10)


# The parts of a PostgreSQL schema that migrations make, in a stable order.
CATALOG = {
    "columns": "select table_name, column_name, data_type, is_nullable, column_default"
    " from information_schema.columns where table_schema = 'public' order by 1, 2",
    "indexes": "select indexdef from pg_indexes where schemaname = 'public' order by 1",
    "policies": "select tablename, policyname, roles, cmd, qual from pg_policies"
    " where schemaname = 'public' order by 1, 2",
    "rls": "select relname, relrowsecurity from pg_class"
    " where relnamespace = 'public'::regnamespace and relkind = 'r' order by 1",
    "triggers": "select tgname from pg_trigger where not tgisinternal order by 1",
    "views": "select c.relname, c.reloptions, pg_get_viewdef(c.oid) from pg_class c"
    " where c.relnamespace = 'public'::regnamespace and c.relkind = 'v' order by 1",
    "versions": VERSIONS,
}


async def catalog(url: str) -> dict[str, list[tuple[Any, ...]]]:
    database = postgres_database(url)
    return {part: await database.sql(query) for part, query in CATALOG.items()}


async def test_the_supabase_files_the_printed_schema_and_the_store_make_one_schema(
    postgres_url: str,
) -> None:
    with (
        fresh_database(postgres_url) as by_files,
        fresh_database(postgres_url) as by_script,
        fresh_database(postgres_url) as by_store,
    ):
        for migration in MIGRATIONS:  # `supabase db push`: one file after the other
            await postgres_database(by_files).script(migration_sql(migration.version))
        await postgres_database(by_script).script(schema_sql("postgres"))
        await postgres_database(by_script).script(schema_sql("postgres"))  # and again
        async with PostgresStore(by_store):
            pass

        expected = await catalog(by_store)
        assert await catalog(by_files) == expected
        assert await catalog(by_script) == expected
    assert expected["versions"] == latest_versions()


async def test_a_postgres_role_with_row_grants_on_the_igsync_tables_only_opens_a_current_schema(
    fresh_postgres_url: str,
) -> None:
    # Grants made table by table before the version record existed still let cron open.
    async with PostgresStore(fresh_postgres_url):
        pass
    grants = (
        "grant select, insert, update, delete on users, user_tokens, instagram_insights,"
        " instagram_sync_logs to {role}"
    )

    with login_role(fresh_postgres_url, grants) as cron_url:
        async with PostgresStore(cron_url) as store:
            assert await store.list_tokens() == []


def test_the_sqlite_schema_printed_at_version_2_is_migrations_1_and_2_unchanged() -> None:
    # The fixture the upgrade test starts from is frozen; migrations 1 and 2 must still be it.
    def body(printed: str, end: str | None = None) -> str:
        start = printed.index("\n-- the schema-version record")
        return printed[start : printed.index(end) if end else None]

    assert body(V2_SQLITE) == body(schema_sql("sqlite"), "\n-- migration 3:")


@pytest.mark.parametrize("table", UPSERTED, ids=lambda t: t.name)
async def test_each_upserted_tables_description_matches_its_ddl(
    table: Table[Any], fresh_postgres_url: str
) -> None:
    # tables.py drives every store's upserts and reads; the migrations create the tables.
    assert sorted(table.names) == sorted(table.model.model_fields)
    async with PostgresStore(fresh_postgres_url):
        pass
    database = postgres_database(fresh_postgres_url)
    columns = dict(
        await database.sql(
            "select column_name, data_type from information_schema.columns"
            f" where table_schema = 'public' and table_name = '{table.name}'"
        )
    )
    data_types = {
        "uuid": "uuid",
        "text": "text",
        "date": "date",
        "timestamptz": "timestamp with time zone",
        "int8": "bigint",
        "jsonb": "jsonb",
    }
    assert {name: columns[name] for name in table.names} == {
        name: data_types[kind] for name, kind in table.columns
    }
    assert columns[table.stamp] == "timestamp with time zone"
    uniques = await database.sql(
        "select array_agg(a.attname order by k.n) from pg_constraint c"
        " cross join lateral unnest(c.conkey) with ordinality as k(attnum, n)"
        " join pg_attribute a on a.attrelid = c.conrelid and a.attnum = k.attnum"
        f" where c.conrelid = '{table.name}'::regclass and c.contype = 'u' group by c.oid"
    )
    assert uniques == [(list(table.key),)]
