"""`Store.session` on the real PostgreSQL (issue 9, item 4): one pooled connection per account.

Checkouts are counted with psycopg_pool's own statistics (`requests_num`: every `getconn`,
whether it waited or not). `sync_all` takes one per account, a session for its upserts, sync
log and claim release, and one per page of claims (taken as the accounts are queued). Inside a
session each call keeps its own transaction; tasks never share its connection; a connection
that breaks in it goes back to the pool to be discarded, and the session's next call takes
another.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from pydantic import SecretStr

from cli_runner import run_cli
from igsync.catalogue import DEFAULT_METRICS
from igsync.errors import StoreError, StoreUnavailableError
from igsync.graph import GraphClient
from igsync.models import AudienceRow, InsightRow, SyncLog, UserToken
from igsync.simulator import SimAccount, Simulator
from igsync.store.postgres import PostgresStore
from igsync.sync_all import MAX_CONCURRENCY, MAX_STORE_CONNECTIONS, store_connections, sync_all
from igsync.window import plan_window

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = [f"1784160000000{i:04d}" for i in range(1, 9)]
REFUSED = ACCOUNTS[2]
USER = uuid4()


@pytest.fixture
async def store(fresh_postgres_url: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(fresh_postgres_url) as opened:
        yield opened


def checkouts(store: PostgresStore) -> int:
    """Connections taken from the store's pool so far (psycopg_pool's `requests_num`)."""
    return store._open_pool().get_stats().get("requests_num", 0)


async def sql(url: str, query: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(query)
        return await cursor.fetchall() if cursor.description else []


async def refuse_insights_of(url: str, account_id: str) -> None:
    """A trigger that raises for one account's insight rows: its whole upsert fails."""
    await sql(
        url,
        "create function refuse_insights() returns trigger language plpgsql as $$ begin"
        f" if new.account_id = '{account_id}' then raise exception 'refused by a test';"
        " end if; return new; end $$",
    )
    await sql(
        url,
        "create trigger refuse_insights before insert on instagram_insights"
        " for each row execute function refuse_insights()",
    )


def insight(account_id: str) -> InsightRow:
    return InsightRow(
        u_id=USER,
        account_id=account_id,
        metric="reach",
        metric_type="time_series",
        period="day",
        end_time=datetime(2026, 11, 20, 8, tzinfo=UTC),
        value=1,
    )


def audience(account_id: str) -> AudienceRow:
    return AudienceRow(
        u_id=USER,
        account_id=account_id,
        metric="follower_demographics",
        timeframe="this_month",
        breakdown="country",
        dimension_values="DE",
        value=3,
        captured_on=datetime(2026, 11, 25, tzinfo=UTC).date(),
    )


def sync_log(account_id: str, status: str = "failed") -> SyncLog:
    return SyncLog(
        run_id=uuid4(),
        u_id=uuid4(),
        account_id=account_id,
        started_at=NOW,
        finished_at=NOW,
        status=status,
        total_inserted=0,
        total_errors=1,
        errors=["store: refused"],
        streams=["account"],
    )


async def backend_pid(store: PostgresStore) -> int:
    rows = await store._fetch("could not read the backend", "select pg_backend_pid()", {})
    return int(rows[0][0])


async def test_sync_all_takes_one_checkout_per_account_and_one_per_page_of_claims(
    store: PostgresStore, fresh_postgres_url: str
) -> None:
    sim = Simulator([SimAccount(a, tz="Europe/Berlin") for a in ACCOUNTS], now=lambda: NOW)
    for account in ACCOUNTS:
        token = SecretStr(sim.issue_token(account))
        await store.save_token(UserToken(u_id=uuid4(), access_token=token, account_id=account))
    await refuse_insights_of(fresh_postgres_url, REFUSED)
    before = checkouts(store)
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport()
    ) as graph:
        report = await sync_all(
            graph,
            store,
            metrics=DEFAULT_METRICS,
            plan=plan_window(NOW),
            streams=["account", "media"],  # four upserts an account, a sync log, a release
            now=NOW,
            concurrency=4,
        )
    taken = checkouts(store) - before
    # at most one session per account (one per group of accounts written together); one
    # claim statement for the page of 8; plus two pages of user_tokens (the rows, then the
    # empty page that ends them)
    assert 1 + 2 < taken <= len(ACCOUNTS) + 1 + 2, taken
    assert report.accounts_ok == len(ACCOUNTS) - 1
    (failed,) = [r for r in report.results if not r.success]
    assert failed.account_id == REFUSED
    assert failed.errors == ["store: PostgreSQL upsert failed: refused by a test [P0001]"]
    # the refused upsert rolled back alone: the media written after it, and its sync log,
    # went on on the same connection
    assert failed.streams_written["media"] > 0
    assert failed.sync_log_error is None
    logged = dict(
        await sql(fresh_postgres_url, "select account_id, status from instagram_sync_logs")
    )
    assert logged == {a: ("partial" if a == REFUSED else "ok") for a in ACCOUNTS}
    counts = dict(
        await sql(
            fresh_postgres_url, "select account_id, count(*) from instagram_insights group by 1"
        )
    )
    assert REFUSED not in counts
    assert len(counts) == len(ACCOUNTS) - 1
    released = await sql(
        fresh_postgres_url, "select count(*) from igsync_claims where released_at is not null"
    )
    assert released == [(len(ACCOUNTS),)]


async def test_a_refused_upsert_rolls_back_alone_and_the_session_goes_on(
    store: PostgresStore, fresh_postgres_url: str
) -> None:
    await refuse_insights_of(fresh_postgres_url, REFUSED)
    before = checkouts(store)
    async with store.session():
        pid = await backend_pid(store)
        assert await store.upsert_audience([audience(REFUSED)]) == 1
        with pytest.raises(StoreError, match="refused by a test"):
            await store.upsert_insights([insight(ACCOUNTS[0]), insight(REFUSED)])
        await store.write_sync_logs([sync_log(REFUSED)])
        assert await backend_pid(store) == pid  # the same connection throughout
    assert checkouts(store) - before == 1
    assert await store.read_insights() == []  # the refused batch, its good row too
    assert len(await store.read_audience()) == 1  # the write before it stays
    assert [
        r[0] for r in await sql(fresh_postgres_url, "select account_id from instagram_sync_logs")
    ] == [REFUSED]
    # the connection went back idle: the next caller gets a working one
    assert await store.upsert_insights([insight(ACCOUNTS[0])]) == 1


async def test_concurrent_sessions_never_share_a_connection(store: PostgresStore) -> None:
    both_in = asyncio.Barrier(2)

    async def in_session() -> tuple[int, int, int]:
        async with store.session():
            first = await backend_pid(store)
            await both_in.wait()  # the other task's session holds its connection now
            # a task started inside the session runs beside it: it takes its own connection
            child = await asyncio.create_task(backend_pid(store))
            async with store.session():  # nested: still the outer session
                again = await backend_pid(store)
            assert again == first
            return first, await backend_pid(store), child

    (a, a_again, a_child), (b, b_again, b_child) = await asyncio.gather(in_session(), in_session())
    assert (a, b) == (a_again, b_again)
    assert a != b
    assert a_child not in (a, b)
    assert b_child not in (a, b)


async def test_a_connection_broken_in_a_session_is_discarded_and_replaced(
    store: PostgresStore, fresh_postgres_url: str
) -> None:
    async with store.session():
        pid = await backend_pid(store)
        await sql(fresh_postgres_url, f"select pg_terminate_backend({pid})")
        # the call on the dead connection fails alone: the server still answers
        with pytest.raises(StoreError) as raised:
            await store.upsert_insights([insight(ACCOUNTS[0])])
        assert not isinstance(raised.value, StoreUnavailableError)
        assert "terminating connection" in str(raised.value)
        # the session's next call takes another connection from the pool
        assert await store.upsert_insights([insight(ACCOUNTS[0])]) == 1
        replaced = await backend_pid(store)
        assert replaced != pid
    stats = store._open_pool().get_stats()
    assert stats.get("returns_bad", 0) + stats.get("connections_lost", 0) == 1
    alive = await sql(
        fresh_postgres_url, f"select count(*) from pg_stat_activity where pid = {pid}"
    )
    assert alive == [(0,)]


async def test_a_session_without_calls_takes_no_connection(store: PostgresStore) -> None:
    before = checkouts(store)
    async with store.session():
        pass
    assert checkouts(store) == before


def test_the_pool_is_sized_to_the_accounts_in_flight_and_capped() -> None:
    assert [store_connections(c) for c in (1, 2, 4, 10, 11, 64, MAX_CONCURRENCY)] == [
        3,
        4,
        6,
        12,
        12,
        12,
        12,
    ]
    assert MAX_STORE_CONNECTIONS < 15  # Supabase's session pooler admits 15 on small computes


@pytest.mark.parametrize("concurrency", [2, 64])
def test_sync_all_opens_a_pool_sized_to_its_concurrency(
    fresh_postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    concurrency: int,
) -> None:
    sizes: list[int] = []
    entered = PostgresStore.__aenter__

    async def recording(self: PostgresStore) -> PostgresStore:
        opened = await entered(self)
        sizes.append(opened._open_pool().max_size)
        return opened

    monkeypatch.setattr(PostgresStore, "__aenter__", recording)
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "--db",
        fresh_postgres_url,
        "sync-all",
        "--concurrency",
        str(concurrency),
        "--allow-empty",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["accounts_total"] == 0
    assert sizes == [store_connections(concurrency)]
