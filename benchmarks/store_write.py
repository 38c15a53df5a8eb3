"""Write throughput of the stores: InsightRows upserted fresh, then the same keys again as
updates, into SQLite and a real PostgreSQL, beside a naive row-at-a-time baseline for each; and
how many PostgREST requests the Supabase store sends for the same rows.

    uv run python benchmarks/store_write.py [--rows 100000] [--batch-size N]
                                            [--naive-rows 10000] [--postgres-url URL]

Each store writes the rows in one call (or `--batch-size` rows per call), then again in the
batch `igsync fetch` writes: one account's rows, 4 metrics x 3 days = 12 per call, one call
after another and 8 at once (accounts synced side by side share the store's pool).
PostgreSQL is a throwaway server started like the tests' one (tests/postgres_server.py), but
with the server's default durability settings (fsync and synchronous_commit on), unless
`--postgres-url` or IGSYNC_TEST_POSTGRES_URL names one (a fresh database is created on it).
The naive baseline sends one upsert per row and commits each (what a loop over
`insert(row)` does); it runs on fewer rows, since only its rate matters.
The Supabase store runs against the tests' fake PostgREST (tests/fake_postgrest.py, respx):
its request count and confirmed rows are real, its speed is not, so none is printed.
Goals: SQLite >= 100,000 rows/s, PostgreSQL >= 50,000 rows/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, closing, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import psycopg

# The tests' throwaway-server helper, shared on purpose: one way to start PostgreSQL.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import postgres_server
from fake_postgrest import FakePostgrest
from igsync.catalogue import DEFAULT_METRICS, METRIC_CONFIG
from igsync.models import InsightRow
from igsync.store import Store
from igsync.store.postgres import PostgresStore
from igsync.store.sqlite import SQLiteStore
from igsync.store.supabase import CHUNK_ROWS
from igsync.window import DEFAULT_DAYS

GOALS = {"sqlite": 100_000, "postgres": 50_000}
DAY0 = datetime(2024, 1, 1, 8, tzinfo=UTC)
# What one `igsync fetch` of one account writes in one upsert_insights call (sync.fetch_account).
FETCH_BATCH = len(DEFAULT_METRICS) * DEFAULT_DAYS
FETCH_WRITERS = 8  # accounts written at once; the PostgreSQL store's pool holds 8 connections


def make_rows(count: int, bump: int = 0, users_from: int = 1) -> list[InsightRow]:
    """`count` rows with distinct keys: accounts x metrics x days, 1 in 20 with a breakdown.

    `bump` changes the values (updates of the same keys); `users_from` the keys (other users).
    """
    metrics = list(METRIC_CONFIG.values())
    days = 400
    rows = []
    for i in range(count):
        account, rest = divmod(i, days * len(metrics))
        spec = metrics[rest // days]
        value = None if i % 17 == 0 else (i * 7919 + bump) % 100_000
        rows.append(
            InsightRow(
                u_id=UUID(int=account + users_from),
                account_id=f"1784{account:010d}",
                metric=spec.name,
                metric_type=spec.metric_type,
                period=spec.period,
                end_time=DAY0 + timedelta(days=rest % days),
                value=value,
                value_json={"city": {"Lisbon": i % 13, "Porto": bump}} if i % 20 == 0 else None,
            )
        )
    return rows


async def timed(work: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await work()
    return time.perf_counter() - start


async def upsert_in_batches(
    store: Store, rows: list[InsightRow], batch_size: int, writers: int = 1
) -> None:
    """All rows, `batch_size` per call, by `writers` tasks at once; every row must be confirmed."""
    batches = [rows[start : start + batch_size] for start in range(0, len(rows), batch_size)]

    async def writer(mine: list[list[InsightRow]]) -> int:
        confirmed = 0
        for sent in mine:
            got = await store.upsert_insights(sent)
            assert got == len(sent), (got, len(sent))
            confirmed += got
        return confirmed

    confirmed = await asyncio.gather(*(writer(batches[k::writers]) for k in range(writers)))
    assert sum(confirmed) == len(rows), (sum(confirmed), len(rows))


NAIVE_SQL = (
    "insert into instagram_insights (u_id, account_id, metric, metric_type, period, end_time,"
    " value, value_json) values ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})"
    " on conflict (u_id, account_id, metric, end_time) do update set value = excluded.value,"
    " value_json = excluded.value_json"
)


def naive_params(r: InsightRow, text: bool) -> tuple[object, ...]:
    return (
        str(r.u_id) if text else r.u_id,
        r.account_id,
        r.metric,
        r.metric_type,
        r.period,
        r.end_time.isoformat() if text else r.end_time,
        r.value,
        None if r.value_json is None else json.dumps(r.value_json),
    )


async def naive_sqlite(path: Path, rows: list[InsightRow]) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("pragma journal_mode = wal")
        conn.execute("pragma synchronous = normal")
        for r in rows:  # autocommit: one statement, one transaction per row
            conn.execute(NAIVE_SQL.format(p="?"), naive_params(r, text=True))


async def naive_postgres(url: str, rows: list[InsightRow]) -> None:
    connect = psycopg.AsyncConnection.connect
    async with await connect(url, autocommit=True, prepare_threshold=None) as conn:
        for r in rows:
            await conn.execute(NAIVE_SQL.format(p="%s"), naive_params(r, text=False))


async def count_supabase_requests(args: argparse.Namespace) -> list[tuple[str, int, int, int, int]]:
    """The real SupabaseStore against the fake PostgREST: requests sent and rows confirmed."""
    fake = FakePostgrest()
    results = []
    try:
        async with fake.open() as store:
            for case, rows in (
                ("fresh", make_rows(args.rows)),
                ("updates", make_rows(args.rows, 1)),
            ):
                before = len(fake.requests)
                confirmed = 0
                for start in range(0, len(rows), args.batch):
                    confirmed += await store.upsert_insights(rows[start : start + args.batch])
                sent = fake.requests[before:]
                posts = [
                    r
                    for r in sent
                    if r.method == "POST" and r.url.path.endswith("/instagram_insights")
                ]
                [(stored,)] = await fake.sql("select count(*) from instagram_insights")
                assert confirmed == stored == len(rows), (confirmed, stored, len(rows))
                results.append((case, len(sent), len(posts), confirmed, stored))
    finally:
        fake.close()
    return results


@contextmanager
def postgres_database(url: str | None) -> Iterator[str]:
    with ExitStack() as stack:
        # settings={}: the server's durable defaults, not the tests' fsync=off.
        server = url or stack.enter_context(postgres_server.postgres_server(settings={}))
        yield stack.enter_context(postgres_server.fresh_database(server))


async def measure(
    name: str,
    open_store: Callable[[], Store],
    naive: Callable[[list[InsightRow]], Awaitable[None]],
    args: argparse.Namespace,
) -> list[tuple[str, str, int, float]]:
    fresh, again = make_rows(args.rows), make_rows(args.rows, bump=1)
    # Other users' keys, so the fetch-sized "fresh" case inserts too.
    fetch_fresh = make_rows(args.rows, users_from=1_000_001)
    fetch_again = make_rows(args.rows, bump=2, users_from=1_000_001)
    fetch_together = make_rows(args.rows, users_from=2_000_001)
    at_once = f"fresh, {FETCH_WRITERS} at once"
    cases = [
        ("upsert, fresh", fresh, args.batch, 1),
        ("upsert, updates", again, args.batch, 1),
        (f"{FETCH_BATCH}-row, fresh", fetch_fresh, FETCH_BATCH, 1),
        (f"{FETCH_BATCH}-row, updates", fetch_again, FETCH_BATCH, 1),
        (f"{FETCH_BATCH}-row, {at_once}", fetch_together, FETCH_BATCH, FETCH_WRITERS),
    ]
    results = []
    async with open_store() as store:
        await store.init_schema()
        for case, rows, batch, writers in cases:
            seconds = await timed(
                lambda rows=rows, batch=batch, writers=writers: upsert_in_batches(
                    store, rows, batch, writers
                )
            )
            results.append((name, case, len(rows), seconds))
    # The baseline writes other keys (another user) into the same, now full, table.
    naive_rows = [r.model_copy(update={"u_id": UUID(int=0)}) for r in fresh[: args.naive_rows]]
    results.append(
        (name, "naive row-at-a-time", len(naive_rows), await timed(lambda: naive(naive_rows)))
    )
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch-size", dest="batch", type=int, default=0, help="0: one call")
    parser.add_argument("--naive-rows", type=int, default=10_000)
    parser.add_argument("--postgres-url", default=os.environ.get(postgres_server.URL_ENV))
    args = parser.parse_args()
    args.batch = args.batch or args.rows

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench" / "igsync.db"
        results += await measure(
            "sqlite", lambda: SQLiteStore(path), lambda rows: naive_sqlite(path, rows), args
        )
    with postgres_database(args.postgres_url) as url:
        results += await measure(
            "postgres", lambda: PostgresStore(url), lambda rows: naive_postgres(url, rows), args
        )

    supabase = await count_supabase_requests(args)

    print(f"{'store':<9} {'case':<26} {'rows':>8} {'seconds':>8} {'rows/s':>10} {'x naive':>8}")
    for store, case, count, seconds in results:
        naive = next(c / s for st, ca, c, s in results if st == store and ca.startswith("naive"))
        rate = count / seconds
        print(
            f"{store:<9} {case:<26} {count:>8,} {seconds:>8.2f} {rate:>10,.0f} {rate / naive:>8.1f}"
        )
    for store, goal in GOALS.items():
        for label, prefix in (("one-call", "upsert"), (f"{FETCH_BATCH}-row", f"{FETCH_BATCH}-")):
            rates = [c / s for st, ca, c, s in results if st == store and ca.startswith(prefix)]
            worst = min(rates)
            verdict = "meets" if worst >= goal else "misses"
            print(
                f"{store} {verdict} its {goal:,} rows/s goal in {label} batches"
                f" (slowest case {worst:,.0f} rows/s)"
            )
    for case, requests, posts, confirmed, stored in supabase:
        print(
            f"supabase {case}: {posts:,} upsert requests ({requests:,} requests in all) for"
            f" {args.rows:,} rows in {CHUNK_ROWS}-row chunks; {confirmed:,} rows confirmed,"
            f" {stored:,} in the table"
        )


if __name__ == "__main__":
    asyncio.run(main())
