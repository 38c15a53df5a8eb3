"""What account claims (igsync.claims) and the job queue (igsync.queue) cost.

    uv run python benchmarks/claims.py [--accounts 500] [--postgres-url URL]

For `--accounts` accounts, in this process: `sync_all` against the in-process simulator (no
latency, default metrics, 1 day) with claims and without (`claim_ttl_s=None`), on SQLite and
on PostgreSQL (a throwaway server started like the tests' one, or a fresh database on
`--postgres-url`); the difference per account is what a claim and its release cost. Then
`enqueue_accounts` on PostgreSQL: jobs deferred per second. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.graph import GraphClient
from igsync.models import UserToken
from igsync.queue import JobWindow, enqueue
from igsync.simulator import SimAccount, Simulator
from igsync.store import Store, open_store
from igsync.sync_all import sync_all
from igsync.window import plan_window

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import postgres_server  # the tests' throwaway server

NOW = datetime(2026, 11, 25, 15, tzinfo=UTC)


async def seed(url: str, accounts: list[str]) -> None:
    store: Store = open_store(url)
    async with store:
        for account in accounts:
            token = SecretStr(f"EAAG-bench-{account}")
            await store.save_token(UserToken(u_id=uuid4(), access_token=token, account_id=account))


async def timed_sync(url: str, sim: Simulator, *, claims: bool) -> float:
    store: Store = open_store(url)
    async with (
        store,
        GraphClient(base_url="http://sim", version="v27.0", transport=sim.transport()) as graph,
    ):
        started = time.perf_counter()
        report = await sync_all(
            graph,
            store,
            metrics=DEFAULT_METRICS,
            plan=plan_window(NOW, days=1),
            now=NOW,
            claim_ttl_s=360.0 if claims else None,
            keep_results=False,
        )
        elapsed = time.perf_counter() - started
    assert report.accounts_ok == report.accounts_total, report
    return elapsed


async def measure(url: str, label: str, accounts: list[str]) -> None:
    sim = Simulator([SimAccount(a) for a in accounts], now=lambda: NOW)
    await seed(url, accounts)
    await timed_sync(url, sim, claims=False)  # warm: files, pages, pools
    without = await timed_sync(url, sim, claims=False)
    with_claims = await timed_sync(url, sim, claims=True)
    per_account_ms = (with_claims - without) / len(accounts) * 1000
    print(
        f"{label}: sync_all of {len(accounts)} accounts {without:.2f} s without claims,"
        f" {with_claims:.2f} s with ({per_account_ms:+.2f} ms per account)"
    )


async def measure_enqueue(url: str, accounts: int) -> None:
    store: Store = open_store(url)
    async with store:
        started = time.perf_counter()
        report = await enqueue(url, store, JobWindow())
        elapsed = time.perf_counter() - started
    print(
        f"postgres: enqueue of {report.enqueued} jobs in {elapsed:.2f} s"
        f" ({report.enqueued / elapsed:.0f} jobs/s, schema creation included)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--postgres-url", default=os.environ.get(postgres_server.URL_ENV))
    args = parser.parse_args()
    accounts = [str(17841400000000000 + n) for n in range(args.accounts)]
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        asyncio.run(measure(f"sqlite:///{folder / 'bench.db'}", "sqlite", accounts))
        server = args.postgres_url or stack.enter_context(
            postgres_server.postgres_server(settings={})
        )
        url = stack.enter_context(postgres_server.fresh_database(server))
        asyncio.run(measure(url, "postgres", accounts))
        asyncio.run(measure_enqueue(url, args.accounts))


if __name__ == "__main__":
    main()
