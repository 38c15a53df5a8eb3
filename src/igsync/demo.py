"""`igsync demo`: the whole job offline, against the simulator in-process."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import SecretStr

from igsync.config import DEFAULT_GRAPH_VERSION
from igsync.graph import GraphClient
from igsync.models import InsightRow, SyncReport, UserToken
from igsync.simulator import Simulator, demo_accounts
from igsync.store import Store
from igsync.store.sqlite import SQLiteStore
from igsync.sync import RunContext, summarize, sync_account
from igsync.tokens import account_from_token
from igsync.window import plan_window


@dataclass(frozen=True)
class DemoReport:
    report: SyncReport
    rows: list[InsightRow]
    #: account id -> IANA zone of the simulated account
    zones: dict[str, str]
    #: False when the rows went to a throwaway database that is gone now
    kept: bool


def demo_user(account_id: str) -> UUID:
    """A stable user per demo account, so re-running with --db upserts the same keys."""
    return uuid5(NAMESPACE_URL, f"igsync-demo:{account_id}")


async def run_demo(
    *,
    accounts: int = 3,
    days: int = 3,
    keep_in: Store | None = None,
    latency: float = 0.0,
    streams: Sequence[str] | None = None,
) -> DemoReport:
    """Seed `user_tokens` with simulated accounts, fetch `streams` (None: the default) for
    them all, and read the insight rows back.

    Into `keep_in` when given, else into a throwaway SQLite file. Raises InputError for an
    unknown stream.
    """
    sim = Simulator(demo_accounts(accounts), latency=latency)
    plan = plan_window(datetime.now(UTC), days=days)
    with tempfile.TemporaryDirectory(prefix="igsync-demo-") as tmp:
        target = keep_in or SQLiteStore(Path(tmp) / "demo.db")
        async with (
            target as store,
            GraphClient(
                # Meta's own host names: the in-process transport never leaves the process,
                # and it routes graph.instagram.com to the simulator's Instagram host.
                base_url="https://graph.facebook.com",
                instagram_url="https://graph.instagram.com",
                version=DEFAULT_GRAPH_VERSION,
                batch=True,  # as fetch and sync-all send them: in Graph batch requests
                transport=sim.transport(),
            ) as graph,
        ):
            await store.init_schema()
            for acc in sim.accounts.values():
                await store.save_token(
                    UserToken(
                        u_id=demo_user(acc.account_id),
                        access_token=SecretStr(f"sim-token-{acc.account_id}"),
                        account_id=acc.account_id,
                    )
                )
            users = {demo_user(a) for a in sim.accounts}
            try:
                tokens = [
                    t
                    for t in await store.list_tokens()
                    if isinstance(t, UserToken) and t.u_id in users
                ]
                started = time.monotonic()
                run = RunContext.create(graph, store, plan=plan, streams=streams)
                results = await asyncio.gather(
                    *(sync_account(run, account_from_token(t)) for t in tokens)
                )
                report = summarize(results, time.monotonic() - started)
                rows = [r for r in await store.read_insights() if r.u_id in users]
            finally:
                # A kept database keeps the insights, never simulated tokens that `accounts
                # list` would show and a cron sync would send to the real Graph API.
                for user in users:
                    await store.delete_tokens(user)
    zones = {a.account_id: a.tz for a in sim.accounts.values()}
    return DemoReport(report, rows, zones, kept=keep_in is not None)
