"""Store kits: one per kind of store, so one contract suite runs against each (a pytest plugin).

A kit says how to open its store on an empty database, how to look at that database behind the
store's back, and how to make it drop rows silently. `KITS` names them; the fixtures `kit` (one
test per kit) and `store` (that kit's store, open) serve test_store_contract.py and
test_store_streams.py. A store joins both suites with one entry in `KITS`.
PYTEST_DONT_REWRITE: it asserts nothing.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
from psycopg import sql

from fake_postgrest import supabase_kit
from igsync.store import Store, postgres
from igsync.store.postgres import PostgresStore
from igsync.store.sqlite import SQLiteStore


class StoreKit(Protocol):
    """What the contract needs to know about one kind of store."""

    def open(self) -> Store:
        """A new, unopened store on this kit's (empty) database."""
        ...

    async def sql(self, query: str) -> list[tuple[Any, ...]]:
        """Run plain SQL on the store's database behind its back; rows if it returns any.

        Portable SQL only (`cast(x as text)`, no `::`). A kit without a database of its own
        (a store faked over HTTP) calls `pytest.skip` here.
        """
        ...

    async def drop_rows_silently(self, account_id: str, table: str = "instagram_insights") -> None:
        """Make the database accept but silently skip inserts into `table` for `account_id`."""
        ...


@dataclass
class SQLiteKit:
    path: Path

    def open(self) -> Store:
        return SQLiteStore(self.path)

    async def sql(self, query: str) -> list[tuple[Any, ...]]:
        with closing(sqlite3.connect(self.path)) as conn, conn:
            return conn.execute(query).fetchall()

    async def drop_rows_silently(self, account_id: str, table: str = "instagram_insights") -> None:
        await self.sql(
            f"create trigger drop_rows_{table} before insert on {table}"
            f" when new.account_id = '{account_id}' begin select raise(ignore); end"
        )


@dataclass
class PostgresKit:
    url: str

    def open(self) -> Store:
        return PostgresStore(self.url)

    async def sql(self, query: str) -> list[tuple[Any, ...]]:
        async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as conn:
            cursor = await conn.execute(query)
            return await cursor.fetchall() if cursor.description else []

    async def drop_rows_silently(self, account_id: str, table: str = "instagram_insights") -> None:
        await self.sql(
            f"create function drop_rows_{table}() returns trigger language plpgsql as $$ begin"
            f" if new.account_id = '{account_id}' then return null; end if; return new;"
            " end $$"
        )
        await self.sql(
            f"create trigger drop_rows before insert on {table}"
            f" for each row execute function drop_rows_{table}()"
        )


def _postgres_kit(request: pytest.FixtureRequest, tmp_path: Path) -> PostgresKit:
    url: str = request.getfixturevalue("fresh_postgres_url")
    # A session time zone far from UTC proves keys and read-backs do not depend on it.
    with psycopg.connect(url, autocommit=True) as conn:
        database = sql.Identifier(conn.info.dbname)
        conn.execute(sql.SQL("alter database {} set timezone = 'Asia/Kolkata'").format(database))
    return PostgresKit(url)


def _postgres_copy_kit(request: pytest.FixtureRequest, tmp_path: Path) -> PostgresKit:
    """PostgreSQL with every batch on the large-batch path (COPY into a temporary table)."""
    monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
    monkeypatch.setattr(postgres, "COPY_MIN_ROWS", 1)
    return _postgres_kit(request, tmp_path)


KITS: dict[str, Callable[[pytest.FixtureRequest, Path], StoreKit]] = {
    "sqlite": lambda request, tmp_path: SQLiteKit(tmp_path / "data" / "igsync.db"),
    "postgres": _postgres_kit,  # the small batches here go as arrays in one INSERT
    "postgres-copy": _postgres_copy_kit,
    "supabase": supabase_kit,
}


@pytest.fixture(params=list(KITS))
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> StoreKit:
    return KITS[request.param](request, tmp_path)


@pytest.fixture
async def store(kit: StoreKit) -> AsyncIterator[Store]:
    async with kit.open() as opened:
        await opened.init_schema()
        yield opened
