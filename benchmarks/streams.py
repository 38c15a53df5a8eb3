"""Graph calls and HTTP round trips per account, per stream, batched and not.

    uv run python benchmarks/streams.py [--accounts 10] [--days 1]

Runs `igsync.sync.sync_account` for each stream alone against the simulator in-process (its
default accounts: 30 media posted over ~2 months, 2 stories a day) and counts what reached it:
Graph calls (a batch item is one; each counts against the account's rate limit) and HTTP round
trips (a batch is one). With several accounts at once, their batched calls share round trips.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime
from uuid import uuid4

from igsync.graph import GraphClient
from igsync.models import Account
from igsync.simulator import SimAccount, Simulator
from igsync.store.sqlite import SQLiteStore
from igsync.streams import choose_streams
from igsync.sync import RunContext, sync_account
from igsync.window import plan_window

APP_ID, APP_SECRET = "bench-app", "bench-secret"


async def measure(stream: str, accounts: int, days: int, batch: bool) -> tuple[float, float]:
    """(calls, round trips) per account for `stream` over `days` days."""
    sims = [SimAccount(f"178414{i:011d}", tz="America/Los_Angeles") for i in range(accounts)]
    sim = Simulator(sims, app_id=APP_ID, app_secret=APP_SECRET)
    now = datetime.now(UTC)
    async with (
        SQLiteStore(":memory:") as store,
        GraphClient(
            base_url="http://sim",
            version="v27.0",
            transport=sim.transport(),
            batch=batch,
            app_id=APP_ID,
            app_secret=APP_SECRET,
        ) as graph,
    ):
        ctx = RunContext(graph, store, choose_streams([stream]), plan_window(now, days=days))
        results = await asyncio.gather(
            *(
                sync_account(ctx, Account(uuid4(), a.account_id, f"EAAG-{a.account_id}"))
                for a in sims
            )
        )
    assert all(r.success for r in results), [r.errors for r in results]
    calls = sum(1 for r in sim.requests if r.method == "GET")
    trips = sum(1 for r in sim.requests if not r.in_batch)
    return calls / accounts, trips / accounts


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10)
    parser.add_argument("--days", type=int, default=1)
    args = parser.parse_args()
    print(f"per account, {args.accounts} accounts at once, --days {args.days}")
    # calls differ a little between the two for media: a refusal learned for a media type
    # spares the calls of every later object of that type, and timing decides what is later
    print(f"{'stream':<10} {'calls':>7} {'trips':>7} {'calls --no-batch':>17} {'trips':>7}")
    for stream in ("account", "audience", "media", "stories"):
        calls, trips = await measure(stream, args.accounts, args.days, batch=True)
        alone, alone_trips = await measure(stream, args.accounts, args.days, batch=False)
        print(f"{stream:<10} {calls:>7.1f} {trips:>7.1f} {alone:>17.1f} {alone_trips:>7.1f}")


if __name__ == "__main__":
    asyncio.run(main())
