"""SQLite's `session()`: one transaction for a task's writes, each write still all or nothing,
and `sync_all` sharing one commit among the accounts that ended together."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest

from igsync.catalogue import DEFAULT_METRICS
from igsync.errors import StoreError
from igsync.graph import GraphClient
from igsync.models import InsightRow, SyncLog
from igsync.simulator import Simulator
from igsync.store.sqlite import SQLiteStore
from igsync.sync_all import sync_all
from igsync.window import plan_window
from sync_runs import add_tokens
from test_store_outage import ACCOUNTS, NOW, ROWS_PER_ACCOUNT, run
from test_store_outage import sim as sim

pytestmark = pytest.mark.anyio

DAY = datetime(2026, 11, 20, 8, tzinfo=UTC)


def row(account: str, value: int = 1, metric: str = "reach") -> InsightRow:
    return InsightRow(
        u_id=uuid4(),
        account_id=account,
        metric=metric,
        metric_type="time_series",
        period="day",
        end_time=DAY,
        value=value,
    )


def log_entry(account: str) -> SyncLog:
    return SyncLog(
        run_id=uuid4(),
        u_id=None,
        account_id=account,
        started_at=DAY,
        finished_at=DAY + timedelta(seconds=1),
        status="ok",
        total_inserted=1,
        total_errors=0,
        errors=[],
    )


def stored(path: Path, sql: str) -> int:
    with closing(sqlite3.connect(path)) as other:
        return int(other.execute(sql).fetchone()[0])


async def test_writes_in_a_session_are_kept_together_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteStore(path) as store:
        async with store.session():
            assert await store.upsert_insights([row("a"), row("b")]) == 2
            await store.write_sync_logs([log_entry("a")])
            # another connection sees none of it before the commit
            assert stored(path, "select count(*) from instagram_insights") == 0
            assert stored(path, "select count(*) from instagram_sync_logs") == 0
        assert stored(path, "select count(*) from instagram_insights") == 2
        assert stored(path, "select count(*) from instagram_sync_logs") == 1


async def test_a_refused_write_in_a_session_rolls_back_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    async with SQLiteStore(path) as store:
        async with store.session():
            assert await store.upsert_insights([row("kept", 1)]) == 1
            # a NOT NULL column left empty: SQLite refuses the statement, not the session
            refused = row("refused").model_copy(update={"metric_type": None})
            with pytest.raises(StoreError):
                await store.upsert_insights([row("refused-too"), refused])
            assert await store.upsert_insights([row("after", 3)]) == 1
        accounts = {
            a for (a,) in sqlite3.connect(path).execute("select account_id from instagram_insights")
        }
    assert accounts == {"kept", "after"}


async def test_a_transaction_sqlite_rolled_back_is_said_and_nothing_is_kept(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"

    async def lose_it(store: SQLiteStore) -> None:
        async with store.session():
            await store.upsert_insights([row("a")])
            store._connect().execute("rollback")  # as SQLite does after a full disk
            await store.write_sync_logs([log_entry("a")])  # must not commit on its own

    async with SQLiteStore(path) as store:
        with pytest.raises(StoreError, match="transaction was rolled back"):
            await lose_it(store)
        assert stored(path, "select count(*) from instagram_insights") == 0
        assert stored(path, "select count(*) from instagram_sync_logs") == 0
        async with store.session():  # the next session starts afresh
            await store.upsert_insights([row("b")])
    assert stored(path, "select count(*) from instagram_insights") == 1


async def test_leaving_a_session_by_an_exception_keeps_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.db"

    async def fail_in_it(store: SQLiteStore) -> None:
        async with store.session():
            await store.upsert_insights([row("a")])
            raise KeyError("a bug")

    async with SQLiteStore(path) as store:
        with pytest.raises(KeyError):
            await fail_in_it(store)
        assert await store.upsert_insights([row("b")]) == 1  # no transaction left open
    assert stored(path, "select count(*) from instagram_insights") == 1


async def test_another_tasks_call_inside_a_session_is_refused(tmp_path: Path) -> None:
    async with SQLiteStore(tmp_path / "s.db") as store:
        async with store.session():
            await store.upsert_insights([row("a")])
            with pytest.raises(RuntimeError, match="another task"):
                await asyncio.create_task(store.upsert_insights([row("b")]))
        assert await store.upsert_insights([row("c")]) == 1


class CountingStore(SQLiteStore):
    """Counts its sessions; loses the writes of session number `lose`."""

    def __init__(self, path: Path, lose: int | None = None) -> None:
        super().__init__(path)
        self.sessions = 0
        self.lose = lose

    @asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        async with super().session():
            yield
            self.sessions += 1
            if self.sessions == self.lose:
                self._connect().execute("rollback")  # the commit will find nothing to commit


async def test_sync_all_shares_commits_among_accounts_that_ended_together(
    sim: Simulator, tmp_path: Path
) -> None:
    # Batched under the app token (the simulator's own app), the accounts in flight share
    # each round trip, so their answers come together and they end in the same loop turn:
    # the writer then finds them all waiting.
    async with (
        CountingStore(tmp_path / "c.db") as store,
        GraphClient(
            base_url="http://sim",
            version="v27.0",
            transport=sim.transport(),
            batch=True,
            app_id="sim-app-id",
            app_secret="sim-app-secret",
        ) as graph,
    ):
        await add_tokens(store, sim, ACCOUNTS)
        report = await sync_all(
            graph, store, metrics=DEFAULT_METRICS, plan=plan_window(NOW), now=NOW, concurrency=8
        )
    assert report.accounts_ok == len(ACCOUNTS)
    assert report.total_inserted == ROWS_PER_ACCOUNT * len(ACCOUNTS)
    # a commit for each round trip's accounts (5 here), never one for each account (40)
    assert store.sessions <= len(ACCOUNTS) // 4
    assert any(r.in_batch for r in sim.requests)


async def test_sync_all_reports_the_accounts_of_a_lost_commit_failed_and_counts_none(
    sim: Simulator, tmp_path: Path
) -> None:
    path = tmp_path / "lost.db"
    async with CountingStore(path, lose=2) as store:
        await add_tokens(store, sim, ACCOUNTS)
        report = await run(sim, store, concurrency=4)
    lost = [r for r in report.results if any("not kept" in e for e in r.errors)]
    assert lost, "the second session's accounts"
    for result in lost:
        assert not result.success
        assert result.total_inserted == 0
        assert result.metrics_inserted == {}
        assert result.errors[-1].startswith("store: not kept: SQLite commit failed")
        assert result.sync_log_error is not None
    assert report.accounts_failed == len(lost)
    assert report.accounts_ok == len(ACCOUNTS) - len(lost)
    # what the report counts is what the database holds, rows and sync logs alike
    assert report.total_inserted == stored(path, "select count(*) from instagram_insights")
    assert stored(path, "select count(*) from instagram_sync_logs") == report.accounts_ok
    lost_ids = ",".join(f"'{r.account_id}'" for r in lost)
    # their releases were lost with the rest: the run ended their claims as it stopped, so
    # the next run takes them at once (not released: none counts them done)
    with closing(sqlite3.connect(path)) as other:
        claims = other.execute(
            f"select released_at, claimed_until from igsync_claims where account_id in ({lost_ids})"
        ).fetchall()
    assert len(claims) == len(lost)
    assert all(released is None for released, _ in claims)
    assert all(datetime.fromisoformat(until) <= datetime.now(UTC) for _, until in claims)
    assert (
        stored(path, f"select count(*) from instagram_insights where account_id in ({lost_ids})")
        == 0
    )
