"""What the in-process sync-all tests share: a simulator's accounts as user_tokens rows, and
one `sync_all` over a transport with the default metrics."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import uuid4

import httpx
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.graph import GraphClient
from igsync.models import SyncReport, UserToken
from igsync.simulator import Simulator
from igsync.store import Store
from igsync.sync_all import sync_all
from igsync.window import plan_window


async def add_tokens(store: Store, sim: Simulator, accounts: Sequence[str]) -> None:
    """A user_tokens row for each of `accounts`, with a token `sim` accepts, each its own user."""
    rows = [
        UserToken(u_id=uuid4(), access_token=SecretStr(sim.issue_token(a)), account_id=a)
        for a in accounts
    ]
    await store.save_tokens(rows)


async def sync_over(
    store: Store,
    transport: httpx.AsyncBaseTransport,
    *,
    now: datetime,
    batch: bool = False,
    app_id: str | None = None,
    **options: Any,
) -> SyncReport:
    """`sync_all` of `store`'s accounts over `transport` at `now` (its default window), the
    default metrics; `batch` and `app_id` go to the GraphClient, `options` to sync_all."""
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=transport, batch=batch, app_id=app_id
    ) as graph:
        return await sync_all(
            graph, store, metrics=DEFAULT_METRICS, plan=plan_window(now), now=now, **options
        )
