"""Graph batch requests over loopback (issue 9): each item ends as the same call alone would,
the calls in flight stay within their bound, and `--ndjson` holds no results."""

from __future__ import annotations

import asyncio
import gc
import sys
import tracemalloc
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx
import pytest
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.graph import GraphClient, GraphRequest, pool_sizes
from igsync.graph._batch import Answer, Batcher
from igsync.models import FetchResult, SyncReport, UserToken
from igsync.simulator import Fault, SimAccount, Simulator, serve_in_thread
from igsync.store.sqlite import SQLiteStore
from igsync.sync_all import sync_all
from igsync.tokens import AppCredentials
from igsync.window import plan_window

pytestmark = pytest.mark.anyio

NOW = datetime.now(UTC)
APP = AppCredentials("sim-app-id", "sim-app-secret")
OK, THROTTLED, EXPIRED, NULLED, DENIED = (f"178414000000{i:05d}" for i in range(1, 6))


def make_sim(accounts: list[SimAccount], **options: Any) -> Simulator:
    return Simulator(
        accounts, strict_tokens=True, app_id=APP.app_id, app_secret=APP.app_secret, **options
    )


async def seeded(sim: Simulator, path: Path) -> SQLiteStore:
    store = SQLiteStore(path)
    await store.__aenter__()
    await store.init_schema()
    for account in sim.accounts:
        token = sim.issue_token(
            account, issued_at=NOW - timedelta(days=10), expires_at=NOW + timedelta(days=50)
        )
        row = UserToken(
            u_id=uuid4(),
            access_token=SecretStr(token),
            account_id=account,
            expires_at=NOW + timedelta(days=50),
        )
        await store.save_token(row)
    return store


async def run(sim: Simulator, path: Path, *, batch: bool, **options: Any) -> SyncReport:
    store = await seeded(sim, path)
    try:
        with serve_in_thread(sim) as served:
            sizes = pool_sizes(options.get("concurrency", 4), batch=batch)
            async with GraphClient(
                base_url=served.graph_url,
                instagram_url=served.instagram_url,
                version="v27.0",
                app_id=APP.app_id,
                app_secret=APP.app_secret,
                batch=batch,
                max_in_flight=sizes.calls,
                connections=sizes.connections,
                batch_size=sizes.batch_size,
            ) as graph:
                return await sync_all(
                    graph, store, metrics=DEFAULT_METRICS, plan=plan_window(NOW), app=APP, **options
                )
    finally:
        await store.__aexit__(None, None, None)


def mixed() -> Simulator:
    sim = make_sim(
        [
            SimAccount(OK),
            SimAccount(THROTTLED),
            SimAccount(EXPIRED),
            SimAccount(NULLED),
            SimAccount(DENIED, denied_metrics=frozenset({"accounts_engaged"})),
        ]
    )
    sim.faults += [
        Fault("throttle_ig", account_id=THROTTLED),  # throttled: retried on its own
        Fault("invalid_token", account_id=EXPIRED),  # 190: refreshed once, retried once
        Fault("batch_timeout", account_id=NULLED),  # null item: retried (batches only)
    ]
    return sim


def outcome(result: FetchResult) -> tuple[Any, ...]:
    return (
        result.success,
        result.metrics_inserted,
        result.token_refreshed,
        [e.split(": ")[0] for e in result.errors],
    )


async def test_batch_items_with_mixed_outcomes_end_as_the_same_calls_alone(
    tmp_path: Path,
) -> None:
    alone_sim, batched_sim = mixed(), mixed()
    alone = await run(alone_sim, tmp_path / "alone.db", batch=False)
    batched = await run(batched_sim, tmp_path / "batched.db", batch=True)
    by_account = {r.account_id: outcome(r) for r in alone.results}
    assert {r.account_id: outcome(r) for r in batched.results} == by_account
    assert by_account[OK] == by_account[THROTTLED] == by_account[NULLED]
    assert by_account[OK][0] is True
    assert by_account[EXPIRED][2] is True  # refreshed after its item's 190
    assert by_account[DENIED][:1] == (False,)
    assert by_account[DENIED][3] == ["accounts_engaged"]  # the others of its group stored
    assert "accounts_engaged" not in by_account[DENIED][1]
    # the batched run really batched, and every fault was hit
    assert not [f for f in batched_sim.faults if f.times > 0]
    items = [r for r in batched_sim.requests if r.path.endswith("/insights")]
    for account in (THROTTLED, EXPIRED, NULLED):  # each fault hit a batch item
        first = next(r for r in items if f"/{account}/" in r.path)
        assert first.in_batch, account
    # a lone retry is sent as the plain GET it stands for; the rest shared batches
    round_trips = [r for r in batched_sim.requests if not r.in_batch]
    assert len(round_trips) < len(items)


async def test_a_run_never_holds_more_calls_in_flight_than_its_bound(tmp_path: Path) -> None:
    accounts = [SimAccount(f"17841400{i:09d}") for i in range(1, 41)]
    for batch in (True, False):
        sim = make_sim(accounts, latency=0.02)
        report = await run(sim, tmp_path / f"bound-{batch}.db", batch=batch, concurrency=3)
        bound = pool_sizes(3, batch=batch).calls
        assert report.accounts_ok == 40
        assert 1 < sim.max_in_flight <= bound


async def test_ndjson_holds_no_results_so_memory_does_not_grow_with_accounts(
    tmp_path: Path,
) -> None:
    """Memory a run over 100 and over 400 accounts still holds when it ends, in-process
    (tracemalloc, after a collection so that only what is referenced counts): with results
    kept it grows with the accounts; without (what --ndjson does), it barely does."""

    async def held(n: int, keep: bool) -> int:
        sim = make_sim([SimAccount(f"17841400{i:09d}") for i in range(1, n + 1)])
        store = await seeded(sim, tmp_path / f"mem-{n}-{keep}.db")
        try:
            async with GraphClient(
                base_url="http://sim", version="v27.0", transport=sim.transport(), batch=True
            ) as graph:
                gc.collect()
                tracemalloc.start()
                report = await sync_all(
                    graph,
                    store,
                    metrics=DEFAULT_METRICS,
                    plan=plan_window(NOW, days=1),
                    keep_results=keep,
                    # the simulator's record of requests is the test double's memory, not igsync's
                    on_result=lambda r: sim.requests.clear(),
                )
                gc.collect()
                current, _ = tracemalloc.get_traced_memory()
                tracemalloc.stop()
        finally:
            await store.__aexit__(None, None, None)
        assert report.accounts_ok == n
        assert len(report.results) == (n if keep else 0)
        return current - sys.getsizeof(report)

    kept = await held(400, True) - await held(100, True)
    streamed = await held(400, False) - await held(100, False)
    assert kept > 300 * 1000  # a FetchResult is over a kilobyte
    assert streamed < kept / 4


async def test_a_batch_leaves_with_its_size_of_calls_or_when_its_linger_runs_out() -> None:
    sent: list[int] = []

    async def post(top: str, requests: Sequence[GraphRequest]) -> list[Answer | None]:
        sent.append(len(requests))
        return [Answer(200, httpx.Headers(), "{}") for _ in requests]

    batcher = Batcher(post, "app|token", linger=0.01, size=16)
    calls = [GraphRequest("facebook_login", f"{i}/insights", {}, "t") for i in range(40)]
    answers = await asyncio.gather(*(batcher.submit(c) for c in calls))
    assert len(answers) == 40
    assert sent == [16, 16, 8]  # two full batches at once; the rest when its linger ran out
    with pytest.raises(ValueError, match="batch size 51"):
        Batcher(post, "app|token", linger=0.01, size=51)


def test_batches_are_meta_s_50_for_one_account_and_a_quarter_of_many() -> None:
    """One account's backfill fills Meta's 50 per round trip; many accounts share batches
    of a quarter of them, so that several batches are on the wire at once."""
    assert pool_sizes(1, batch=True).batch_size == 50
    assert pool_sizes(8, batch=True).batch_size == 10
    assert pool_sizes(64, batch=True).batch_size == 16
    assert pool_sizes(256, batch=True).batch_size == 50
    sizes = pool_sizes(64, batch=True)
    # two connections for each batch its calls in flight fill
    assert sizes.connections == 2 * sizes.calls // sizes.batch_size
