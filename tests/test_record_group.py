"""Accounts written together (`record_group`: one upsert per table and one statement of sync
logs for a group) end exactly as each would alone (`record`), and a group the store refuses
falls back to `record`, one account at a time, nothing lost or logged twice (issue 9, CPU per
account)."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

import igsync.sync_all
from igsync.catalogue import DEFAULT_METRICS
from igsync.errors import StoreError
from igsync.graph import GraphClient
from igsync.models import FetchResult
from igsync.simulator import Fault, SimAccount, Simulator
from igsync.store import iter_tokens
from igsync.store.sqlite import SQLiteStore
from igsync.sync import RunContext, gather_account, record, record_group
from igsync.tokens import account_from_token
from igsync.window import plan_window
from sync_runs import add_tokens, sync_over

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
ACCOUNTS = [f"1784150000000{i:04d}" for i in range(1, 7)]
BAD_TOKEN, BAD_METRIC, EMPTY = ACCOUNTS[1], ACCOUNTS[2], ACCOUNTS[3]


def simulator() -> Simulator:
    sim = Simulator(
        [SimAccount(a, tz="Europe/Berlin") for a in ACCOUNTS],
        now=lambda: NOW,
        strict_tokens=True,
    )
    sim.faults += [
        Fault("invalid_token", times=100, account_id=BAD_TOKEN),
        Fault("unknown_metric", times=100, account_id=BAD_METRIC, metric="reach"),
        Fault("empty_data", times=100, account_id=EMPTY),
    ]
    return sim


def comparable(result: FetchResult) -> dict[str, Any]:
    return result.model_dump(exclude={"duration_s", "user_id"})


def sync_logs(path: Path) -> list[tuple[Any, ...]]:
    """The stored sync logs, by account, without their users, run ids and times."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(
            "select account_id, status, total_inserted, total_errors, errors,"
            " token_refreshed, streams from instagram_sync_logs order by account_id"
        ).fetchall()


async def gather_and(
    tmp_path: Path, name: str, write: Any
) -> tuple[list[FetchResult] | None, list[Any], list[tuple[Any, ...]]]:
    """Each account gathered from a fresh simulator, then written by `write(ctx, gathered)`
    inside one session of a new SQLite store: its results, stored rows and sync logs."""
    sim = simulator()
    async with SQLiteStore(tmp_path / f"{name}.db") as store:
        await add_tokens(store, sim, ACCOUNTS)
        tokens = sorted([t async for t in iter_tokens(store)], key=lambda t: str(t.account_id))
        async with GraphClient(
            base_url="http://sim", version="v27.0", transport=sim.transport()
        ) as graph:
            ctx = RunContext.create(
                graph, store, plan=plan_window(NOW), metrics=DEFAULT_METRICS, now=NOW
            )
            gathered = [await gather_account(ctx, account_from_token(t)) for t in tokens]
            async with store.session():
                results = await write(ctx, gathered)
        rows = [(r.account_id, r.metric, r.end_time, r.value) for r in await store.read_insights()]
    return results, rows, sync_logs(tmp_path / f"{name}.db")


async def one_by_one(ctx: RunContext, gathered: list[Any]) -> list[FetchResult]:
    return [await record(ctx, g) for g in gathered]


async def test_a_group_ends_as_each_account_alone(tmp_path: Path) -> None:
    alone = await gather_and(tmp_path, "alone", one_by_one)
    together = await gather_and(tmp_path, "together", record_group)

    assert together[0] is not None
    assert alone[0] is not None
    assert [comparable(r) for r in together[0]] == [comparable(r) for r in alone[0]]
    assert together[1] == alone[1]
    assert together[2] == alone[2]
    # the cases the group holds, as each alone shows them
    by_account = {r.account_id: r for r in together[0]}
    assert by_account[ACCOUNTS[0]].success
    days = 3  # plan_window's default window at NOW
    assert by_account[ACCOUNTS[0]].total_inserted == days * len(DEFAULT_METRICS)
    assert not by_account[BAD_TOKEN].success
    assert by_account[BAD_TOKEN].total_inserted == 0
    assert not by_account[BAD_METRIC].success
    assert 0 < by_account[BAD_METRIC].total_inserted < days * len(DEFAULT_METRICS)
    assert by_account[EMPTY].total_inserted == 0
    assert len(together[2]) == len(ACCOUNTS)


async def test_a_group_the_store_refuses_is_none_and_writes_no_sync_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def refuse(self: SQLiteStore, entries: Any) -> None:
        raise StoreError("SQLite refused a sync log: CHECK constraint failed")

    monkeypatch.setattr(SQLiteStore, "write_sync_logs", refuse)
    results, rows, logs = await gather_and(tmp_path, "refused", record_group)

    assert results is None
    assert logs == []
    # written before the refusal: rows the accounts written alone write again, as they were
    assert rows


class RefusesOneAccount(SQLiteStore):
    """Refuses any upsert holding the rows of `refused`, as a trigger or policy would."""

    refused = ACCOUNTS[4]
    #: the accounts of each upsert
    upserts: ClassVar[list[set[str]]] = []

    async def upsert_insights(self, rows: Any) -> int:
        self.upserts.append({r.account_id for r in rows})
        if any(r.account_id == self.refused for r in rows):
            raise StoreError("SQLite upsert failed: refused by a test")
        return await super().upsert_insights(rows)


async def test_sync_all_falls_back_to_each_account_when_a_group_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = simulator()
    # every account ends in the same turn of the event loop, as a batch's answers end them:
    # the first writer free takes them all as one group
    ended = asyncio.Barrier(len(ACCOUNTS))

    async def gather_together(ctx: RunContext, account: Any) -> Any:
        gathered = await gather_account(ctx, account)
        await ended.wait()
        return gathered

    monkeypatch.setattr(igsync.sync_all, "gather_account", gather_together)
    async with RefusesOneAccount(tmp_path / "x.db") as store:
        assert store.write_group >= len(ACCOUNTS)
        await add_tokens(store, sim, ACCOUNTS)
        report = await sync_over(store, sim.transport(), now=NOW, concurrency=len(ACCOUNTS))
        stored = {r.account_id for r in await store.read_insights()}
    logs = sync_logs(tmp_path / "x.db")

    # the accounts with rows went together, the refused one among them, then each alone
    with_rows = {ACCOUNTS[0], BAD_METRIC, ACCOUNTS[4], ACCOUNTS[5]}
    assert store.upserts[0] == with_rows
    assert sorted(min(u) for u in store.upserts[1:]) == sorted(with_rows)
    assert all(len(u) == 1 for u in store.upserts[1:])
    by_account = {r.account_id: r for r in report.results}
    refused = by_account[RefusesOneAccount.refused]
    assert refused.errors[-1] == "store: SQLite upsert failed: refused by a test"
    assert refused.total_inserted == 0
    assert RefusesOneAccount.refused not in stored
    # every other account written and logged once, as alone
    assert by_account[ACCOUNTS[0]].success
    assert stored == {ACCOUNTS[0], BAD_METRIC, ACCOUNTS[5]}
    assert [log[0] for log in logs] == sorted(ACCOUNTS)
