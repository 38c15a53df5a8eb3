"""A store that dies mid-run (issue 11, finding 7): `sync-all` stops sending accounts to Meta.

The real one: a PostgreSQL server of its own, stopped (`pg_ctl stop -m fast`, as a service
stop does) after 10 of 40 accounts. Then a store stub that starts raising, for the exact
counts. Time is never asserted: the bound is the Graph calls made after the outage and the
accounts reported not attempted.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from psycopg_pool import PoolTimeout

from fake_postgrest import FakePostgrest
from igsync.errors import (
    StoreConfigError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from igsync.graph import GraphClient
from igsync.models import FetchResult, InsightRow, SyncLog, SyncReport
from igsync.simulator import SimAccount, Simulator
from igsync.store import Store, postgres, sqlite
from igsync.store.postgres import PostgresStore
from igsync.store.sqlite import SQLiteStore
from igsync.store.supabase import SupabaseStore
from igsync.sync import Account, RunContext, gather_account, record
from igsync.window import plan_window
from postgres_server import (
    PostgresUnavailableError,
    ServerControl,
    find_bindir,
    stoppable_postgres_server,
)
from sync_runs import add_tokens, sync_over

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = [f"1784150000000{i:04d}" for i in range(1, 41)]
ROWS_PER_ACCOUNT = 12  # the default metrics over plan_window(NOW)'s 3 days
_ACCOUNT_IN_PATH = re.compile(r"/(\d{15,})/")


@pytest.fixture
def server() -> Iterator[ServerControl]:
    """A PostgreSQL server for this test alone, from the local binaries even when URL_ENV
    names a shared server (that one must not be stopped)."""
    try:
        find_bindir()
        with stoppable_postgres_server() as control:
            yield control
    except PostgresUnavailableError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required when CI=true: {exc}", pytrace=False)
        pytest.skip(str(exc))


@pytest.fixture
def sim() -> Simulator:
    return Simulator([SimAccount(a, tz="Europe/Berlin") for a in ACCOUNTS], now=lambda: NOW)


def accounts_called(sim: Simulator, since: int = 0) -> set[str]:
    """The accounts named in the Graph calls the simulator answered from request `since` on."""
    found = set()
    for request in sim.requests[since:]:
        if match := _ACCOUNT_IN_PATH.search(request.path):
            found.add(match[1])
    return found


async def run(sim: Simulator, store: Store, concurrency: int, on_result: Any = None) -> SyncReport:
    return await sync_over(
        store, sim.transport(), now=NOW, concurrency=concurrency, on_result=on_result
    )


async def test_postgres_stopped_mid_run_ends_the_run_without_more_graph_calls(
    server: ServerControl, sim: Simulator
) -> None:
    concurrency = 2
    heard: list[FetchResult] = []
    outage: dict[str, Any] = {}

    def on_result(result: FetchResult) -> None:
        heard.append(result)
        if len(heard) == 1:
            server.stop()  # synchronous: no other task runs until PostgreSQL is down
            outage["calls"] = len(sim.requests)
            outage["accounts"] = accounts_called(sim)

    async with PostgresStore(server.url) as store:
        await add_tokens(store, sim, ACCOUNTS)
        report = await run(sim, store, concurrency, on_result)

    assert heard[0].success
    check_stopped_run_pg(report, sim, outage, concurrency)

    # Back up: what was reported written is there, what was reported failed is not counted.
    server.start()
    with psycopg.connect(server.url) as conn:
        stored = dict(
            conn.execute(
                "select account_id, count(*) from instagram_insights group by account_id"
            ).fetchall()
        )
        logged = {a for (a,) in conn.execute("select account_id from instagram_sync_logs")}
    for r in report.results:
        if r.success:
            assert stored.get(r.account_id) == r.total_inserted == ROWS_PER_ACCOUNT
        if not r.attempted:
            assert r.account_id not in stored
            assert r.account_id not in logged
    assert report.total_inserted == ROWS_PER_ACCOUNT * report.accounts_ok


def check_stopped_run_pg(
    report: SyncReport, sim: Simulator, outage: dict[str, Any], concurrency: int
) -> None:
    assert not report.success
    assert report.stopped is not None
    assert report.stopped.startswith("the store stopped answering (PostgreSQL stopped answering")
    not_attempted = [r for r in report.results if not r.attempted]
    assert report.accounts_not_attempted == len(not_attempted)
    assert report.accounts_total == len(ACCOUNTS)
    # Once the outage is seen no account is started: only those in flight may still call
    # Meta (one per gatherer, plus those started before the first failed write noticed: a
    # writer takes the account it waited for and those queued then, one per gatherer).
    started_after = accounts_called(sim, outage["calls"]) - outage["accounts"]
    assert len(started_after) <= concurrency * (concurrency + 2), started_after
    # every account either reached Meta before the outage, or in flight as it was noticed,
    # or is reported not attempted: none is lost from the report
    assert len(not_attempted) == len(ACCOUNTS) - len(outage["accounts"]) - len(started_after)
    # Ahead of the first result heard: an account gathering and one queued per gatherer, and
    # each writer's group (the account it waited for and those queued then)
    ahead = 2 * concurrency + concurrency * (concurrency + 1)
    assert len(not_attempted) >= len(ACCOUNTS) - 1 - ahead - concurrency * (concurrency + 2)
    called = accounts_called(sim)
    for r in not_attempted:
        assert not r.success
        assert r.total_inserted == 0
        assert r.errors == [f"not attempted: {report.stopped}"]
        assert r.account_id not in called  # nothing was sent to Meta for it
    for r in report.results:
        if any(e.startswith("store:") for e in r.errors):
            assert r.total_inserted == 0, r  # a failed write is never counted
    assert report.total_inserted == sum(r.total_inserted for r in report.results)


class DyingStore(SQLiteStore):
    """A SQLite store whose "server stops" at its upsert number `writes + 1`: that call and
    every call after it raise the StoreUnavailableError a dead PostgreSQL would."""

    def __init__(self, path: Any, writes: int) -> None:
        super().__init__(path)
        self.writes_left = writes
        self.dead = False
        self.calls_after_death = 0

    def _check(self) -> None:
        if self.dead:
            self.calls_after_death += 1
            raise StoreUnavailableError("PostgreSQL stopped answering: connection refused")

    async def upsert_insights(self, rows: Sequence[InsightRow]) -> int:
        self.dead = self.dead or self.writes_left == 0
        self._check()
        self.writes_left -= 1
        return await super().upsert_insights(rows)

    async def write_sync_logs(self, entries: Sequence[SyncLog]) -> None:
        self._check()
        await super().write_sync_logs(entries)


async def test_a_store_that_starts_failing_stops_the_run_at_once(
    sim: Simulator, tmp_path: Any
) -> None:
    async with DyingStore(tmp_path / "x.db", writes=5) as store:
        await add_tokens(store, sim, ACCOUNTS)
        report = await run(sim, store, concurrency=1)
    # 5 accounts written; the 6th write failed; at most the one account gathered meanwhile
    # and the one being gathered reached Meta after it.
    assert report.accounts_ok == 5
    assert report.stopped is not None
    assert report.stopped.startswith("the store stopped answering (PostgreSQL stopped")
    assert len(accounts_called(sim)) <= 5 + 3
    assert report.accounts_not_attempted >= len(ACCOUNTS) - 5 - 3
    assert report.accounts_total == len(ACCOUNTS)
    assert store.calls_after_death == 1  # no write, no sync log tried once it was seen dead
    failed = [r for r in report.results if r.attempted and not r.success]
    assert failed
    assert all(r.total_inserted == 0 for r in failed)
    assert failed[0].errors[0].startswith("store: PostgreSQL stopped answering")
    assert failed[0].sync_log_error is not None
    assert report.total_inserted == 5 * ROWS_PER_ACCOUNT


async def test_a_sqlite_file_locked_past_its_busy_timeout_stops_the_run(
    sim: Simulator, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_S", 0.05)  # SQLite's own wait, not a test clock
    path = tmp_path / "locked.db"
    async with SQLiteStore(path) as store:
        await add_tokens(store, sim, ACCOUNTS)
        # another process holds the write lock for the whole run (a sqlite3 shell left open)
        with closing(sqlite3.connect(path, isolation_level=None)) as other:
            other.execute("begin immediate")
            report = await run(sim, store, concurrency=1)
            other.execute("rollback")
    assert report.accounts_ok == 0
    assert report.stopped is not None
    assert report.stopped.startswith(
        f"the store stopped answering (SQLite database {path} stayed locked by another process"
    )
    assert "database is locked" in report.stopped
    assert len(accounts_called(sim)) <= 3  # the first account, one gathered, one gathering
    assert report.accounts_not_attempted >= len(ACCOUNTS) - 3


async def test_supabase_unanswered_on_every_attempt_is_a_dead_store(
    supabase_store: SupabaseStore, fake_postgrest: FakePostgrest
) -> None:
    fake_postgrest.fail_connection(method="POST", times=100)
    with pytest.raises(
        StoreUnavailableError, match=r"cannot reach it \(ConnectError\) \(4 attempts\)"
    ):
        await supabase_store.upsert_insights([insight_row()])
    fake_postgrest.faults.clear()
    # a request refused, or answered once with a 503, is that request's failure only
    fake_postgrest.fail(503, "PGRST000", method="POST", times=2)
    assert await supabase_store.upsert_insights([insight_row()]) == 1
    fake_postgrest.fail(400, "23514", "violates check constraint", method="POST")
    with pytest.raises(StoreError) as raised:
        await supabase_store.upsert_insights([insight_row()])
    assert not isinstance(raised.value, StoreUnavailableError)


def insight_row() -> InsightRow:
    return InsightRow(
        u_id=uuid4(),
        account_id=ACCOUNTS[0],
        metric="reach",
        metric_type="time_series",
        period="day",
        end_time=NOW,
        value=1,
    )


async def test_a_restarted_server_is_not_an_outage(server: ServerControl) -> None:
    async with PostgresStore(server.url) as store:
        assert await store.upsert_insights([insight_row()]) == 1
        server.stop()
        server.start()  # the pooled connections died; the server answers again
        # the write on the connection that died fails, as that write's failure alone
        with pytest.raises(StoreError) as raised:
            await store.upsert_insights([insight_row()])
        assert not isinstance(raised.value, StoreUnavailableError)
        assert "PostgreSQL upsert failed: terminating connection" in str(raised.value)
        assert await store.upsert_insights([insight_row()]) == 1
        assert await store.upsert_insights([insight_row()]) == 1


async def test_a_server_still_restarting_when_its_connection_died_is_not_an_outage(
    server: ServerControl,
) -> None:
    """pg_ctl restart: the fresh connection that tells a restart from an outage is refused
    while the server starts again; it is tried again for a few seconds before the store is
    taken for down (RESTART_PAUSES_S)."""
    async with PostgresStore(server.url) as store:
        assert await store.upsert_insights([insight_row()]) == 1
        server.stop()
        restart = threading.Timer(0.2, server.start)
        restart.start()
        try:
            with pytest.raises(StoreError) as raised:
                await store.upsert_insights([insight_row()])
        finally:
            restart.join()
        assert not isinstance(raised.value, StoreUnavailableError), raised.value
        assert await store.upsert_insights([insight_row()]) == 1


async def test_an_account_whose_streams_never_started_is_reported_not_attempted(
    sim: Simulator, tmp_path: Any
) -> None:
    async with (
        SQLiteStore(tmp_path / "x.db") as store,
        GraphClient(base_url="http://sim", version="v27.0", transport=sim.transport()) as graph,
    ):
        ctx = RunContext.create(
            graph, store, plan=plan_window(NOW), streams=["account", "media"], now=NOW
        )
        ctx.health.saw(StoreUnavailableError("PostgreSQL stopped answering: connection refused"))
        token = sim.issue_token(ACCOUNTS[0])
        account = Account(uuid4(), ACCOUNTS[0], token, kind="facebook_login")
        result = await record(ctx, await gather_account(ctx, account))
    assert sim.requests == []  # neither stream asked Meta for anything
    reason = "the store stopped answering (PostgreSQL stopped answering: connection refused)"
    # its claim was taken before the store went, but nothing was sent to Meta for it: the
    # run's count of accounts not attempted must hold it
    assert result.errors == [f"not attempted: {reason}"]
    assert not result.attempted
    assert not result.success
    assert result.total_inserted == 0
    assert result.sync_log_error is None  # none was tried on a store known to be down


async def test_connections_give_up_on_a_server_gone_silent(fresh_postgres_url: str) -> None:
    """A partition refuses nothing: libpq's TCP timeouts bound the wait (the URL's own win)."""
    url = f"{fresh_postgres_url}?keepalives_idle=7"
    async with PostgresStore(url) as store, store._open_pool().connection() as conn:
        used = conn.info.get_parameters()
    assert used["tcp_user_timeout"] == "30000"
    assert (used["keepalives_idle"], used["keepalives_interval"]) == ("7", "10")
    assert used["keepalives_count"] == "3"


async def test_supabase_unanswered_when_opened_is_a_setting_to_check(
    fake_postgrest: FakePostgrest,
) -> None:
    fake_postgrest.fail_connection(times=100)
    with pytest.raises(StoreConfigError, match=r"\(4 attempts\); check that the Supabase project"):
        async with fake_postgrest.open():
            pass


@pytest.mark.parametrize(
    ("error", "gone"),
    [
        (psycopg.OperationalError("server closed the connection unexpectedly"), True),
        (psycopg.errors.lookup("08006")("connection failure"), True),
        (psycopg.errors.lookup("57P01")("terminating connection (admin shutdown)"), True),
        (psycopg.errors.lookup("57P03")("the database system is starting up"), True),
        (PoolTimeout("couldn't get a connection after 30.00 sec"), True),
        (psycopg.errors.lookup("40001")("could not serialize access"), False),
        (psycopg.errors.lookup("40P01")("deadlock detected"), False),
        (psycopg.errors.lookup("57014")("canceling statement due to statement timeout"), False),
        (psycopg.errors.lookup("53100")("could not extend file: No space left on device"), False),
        (psycopg.errors.lookup("23505")("duplicate key value"), False),
    ],
)
def test_which_postgresql_errors_may_mean_the_server_is_gone(
    error: psycopg.Error, *, gone: bool
) -> None:
    """Those that do are then confirmed by a fresh connection (the restart test above)."""
    assert postgres._connection_lost(error) is gone


@pytest.mark.parametrize(
    ("code", "kind", "says"),
    [
        (5, StoreUnavailableError, "stayed locked by another process for over 30 s"),
        (10 | 3 << 8, StoreUnavailableError, "stopped answering (disk I/O error)"),
        (8, StoreUnavailableError, "cannot be written any more"),
        (11, StoreCorruptError, "is damaged (disk I/O error): stop writing to it"),
        (26, StoreCorruptError, "is damaged"),
        (13, StoreError, "SQLite upsert failed: disk I/O error"),  # SQLITE_FULL: one write
        (19, StoreError, "SQLite upsert failed: disk I/O error"),  # a constraint
    ],
)
def test_which_sqlite_errors_mean_the_file_is_at_fault(
    code: int, kind: type[StoreError], says: str
) -> None:
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = code  # as SQLite sets it: the extended code
    raised = sqlite._failure(Path("/data/igsync.db"), " upsert failed", error)
    assert type(raised) is kind
    assert says in str(raised)
