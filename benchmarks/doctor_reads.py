"""The reads behind `igsync doctor`, sync-all's empty-run check and `accounts list`'s last sync.

    uv run python benchmarks/doctor_reads.py [--accounts 2000] [--runs 30] [--postgres URL]

Seeds N accounts with `runs` sync-log rows each (a month of daily runs) into a fresh SQLite file
(and, with --postgres, a PostgreSQL database you give, which it fills: use a scratch one), then
prints the median wall time of count_tokens, latest_sync_logs for every account, list_tokens
and the whole `accounts list` read (list_accounts). Figures only, no assertion.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import uuid4

from pydantic import SecretStr

from igsync.config import Settings
from igsync.models import SyncLog, UserToken
from igsync.store import Store
from igsync.tokens import list_accounts


async def seed(store: Store, accounts: int, runs: int) -> None:
    """`accounts` tokens, then `runs` daily sync-all runs, each writing one log per account
    (in the order sync-all writes them: run after run)."""
    start = datetime(2026, 11, 1, 6, tzinfo=UTC)
    ids = []
    for i in range(accounts):
        u_id, account = uuid4(), str(17841400000000000 + i)
        secret = SecretStr(f"EAAJ-benchmark-{i:06d}-Zq81kLmN0pQrStUv")
        await store.save_token(UserToken(u_id=u_id, account_id=account, access_token=secret))
        ids.append((u_id, account))
    for day in range(runs):
        began, run_id = start + timedelta(days=day), uuid4()
        for u_id, account in ids:
            await store.write_sync_logs(
                [
                    SyncLog(
                        run_id=run_id,
                        u_id=u_id,
                        account_id=account,
                        started_at=began,
                        finished_at=began + timedelta(seconds=2),
                        status="ok",
                        total_inserted=12,
                        total_errors=0,
                        errors=[],
                    )
                ]
            )


async def median(read: Callable[[], Awaitable[object]], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        await read()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


async def measure(name: str, store: Store, accounts: int, runs: int) -> None:
    began = time.perf_counter()
    async with store:
        await seed(store, accounts, runs)
        seeded = time.perf_counter() - began
        keys = [(str(t.u_id), t.account_id) for t in await store.list_tokens()]
        settings = Settings(_env_file=None)  # type: ignore[call-arg]
        now = datetime.now(UTC)
        figures = {
            "count_tokens": await median(store.count_tokens),
            "latest_sync_logs (all)": await median(lambda: store.latest_sync_logs(keys)),
            "list_tokens": await median(store.list_tokens),
            "accounts list read": await median(lambda: list_accounts(store, settings, now)),
        }
    print(f"{name}: {accounts} accounts x {runs} sync logs (seeded in {seeded:.1f} s)")
    for what, seconds in figures.items():
        print(f"  {what:<24} {seconds * 1000:9.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--postgres", metavar="URL")
    args = parser.parse_args()
    from igsync.store.sqlite import SQLiteStore

    with tempfile.TemporaryDirectory() as tmp:
        sqlite = SQLiteStore(Path(tmp) / "bench.db")
        asyncio.run(measure("SQLite", sqlite, args.accounts, args.runs))
    if args.postgres:
        from igsync.store.postgres import PostgresStore

        asyncio.run(measure("PostgreSQL", PostgresStore(args.postgres), args.accounts, args.runs))


if __name__ == "__main__":
    main()
