"""Account claims (igsync.claims, schema migration 6) on every store, and in `sync_all`.

The store contract runs against SQLite, the real PostgreSQL and the fake Supabase: a claim is
taken once, held against other runs until it expires, taken over after, renewed and released
only by its holder. Runs racing for the same accounts (separate store connections, as separate
processes have) never both get one. `sync_all` then reports another run's account as skipped
(not failed, no Graph call, no sync log) and syncs an account whose claim a crashed run left.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.claims import DONE, SKIPPED, Claims
from igsync.graph import GraphClient
from igsync.models import AccountClaim, BadTokenRow, SyncReport, UserToken
from igsync.simulator import SimAccount, Simulator
from igsync.store import Store
from igsync.store.sqlite import SQLiteStore
from igsync.sync_all import sync_all
from igsync.window import plan_window
from store_kits import KITS, StoreKit

pytestmark = pytest.mark.anyio

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
ACCOUNT = "17841400000000001"
T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # the simulator's clock and the run's window
TTL = timedelta(minutes=6)


@pytest.fixture(params=["sqlite", "postgres", "supabase"])
def claim_kit(request: pytest.FixtureRequest, tmp_path: Path) -> StoreKit:
    return KITS[request.param](request, tmp_path)


@pytest.fixture
async def store(claim_kit: StoreKit) -> AsyncIterator[Store]:
    async with claim_kit.open() as opened:
        yield opened


async def claim_one(
    store: Store,
    u_id: UUID,
    account: str,
    run: UUID,
    at: datetime,
    until: datetime,
    started: datetime,
) -> AccountClaim:
    """`run` (started at `started`) claims one account at `at` until `until`."""
    claims = await store.claim_accounts([(u_id, account)], run, at, until, started)
    assert list(claims) == [(u_id, account)]
    return claims[(u_id, account)]


async def claim(
    store: Store, run: UUID, at: datetime, *, account: str = ACCOUNT, started: datetime = T0
) -> AccountClaim:
    """`run` (started at `started`) claims ALICE's `account` at `at`, for TTL."""
    return await claim_one(store, ALICE, account, run, at, at + TTL, started)


async def test_a_free_account_is_claimed_and_held_against_another_run(store: Store) -> None:
    first, second = uuid4(), uuid4()

    mine = await claim(store, first, T0)
    theirs = await claim(store, second, T0 + timedelta(seconds=1))

    assert (mine.claimed, mine.claimed_by, mine.claimed_until) == (True, first, T0 + TTL)
    assert (theirs.claimed, theirs.claimed_by, theirs.claimed_until) == (False, first, T0 + TTL)
    assert theirs.released_at is None
    # asking again while holding it is holding it
    assert (await claim(store, first, T0)).claimed is True


async def test_claims_are_per_user_and_account(store: Store) -> None:
    first, second = uuid4(), uuid4()
    assert (await claim(store, first, T0)).claimed
    assert (await claim(store, second, T0, account="17841400000000002")).claimed
    other_user = await claim_one(store, uuid4(), ACCOUNT, second, T0, T0 + TTL, T0)
    assert other_user.claimed


async def test_a_crashed_runs_claim_is_taken_over_when_it_expires(store: Store) -> None:
    crashed, next_run = uuid4(), uuid4()
    await claim(store, crashed, T0)

    just_before = await claim(store, next_run, T0 + TTL - timedelta(seconds=1))
    at_expiry = await claim(store, next_run, T0 + TTL)

    assert just_before.claimed is False
    assert (at_expiry.claimed, at_expiry.claimed_by) == (True, next_run)
    assert await store.release_claim(ALICE, ACCOUNT, crashed, T0 + TTL) is False
    later = await claim(store, uuid4(), T0 + TTL)
    assert (later.claimed, later.claimed_by) == (False, next_run)


async def test_a_released_account_is_skipped_by_runs_that_started_before_the_release(
    store: Store,
) -> None:
    first, second = uuid4(), uuid4()
    await claim(store, first, T0)
    released = T0 + timedelta(minutes=1)

    assert await store.release_claim(ALICE, ACCOUNT, second, released) is False  # not its claim
    assert await store.release_claim(ALICE, ACCOUNT, first, released) is True
    assert await store.release_claim(ALICE, ACCOUNT, first, released) is False  # released already

    # a run that was already running when the account was finished: done, not again
    side_by_side = await claim(store, second, released + timedelta(seconds=1), started=T0)
    assert side_by_side.claimed is False
    assert (side_by_side.claimed_by, side_by_side.released_at) == (first, released)
    # the next run (started after the release) syncs it again
    next_run = await claim(store, second, released + timedelta(seconds=2), started=released)
    assert (next_run.claimed, next_run.claimed_by, next_run.released_at) == (True, second, None)


async def test_renewing_moves_only_the_runs_own_unreleased_claims(store: Store) -> None:
    mine, theirs = uuid4(), uuid4()
    for account, run in (("1", mine), ("2", mine), ("3", theirs), ("4", mine)):
        await claim(store, run, T0, account=account)
    await store.release_claim(ALICE, "4", mine, T0)

    assert await store.renew_claims(mine, T0 + 3 * TTL) == 2

    # past the first expiry: the renewed claims still hold, the other run's is free
    after = T0 + 2 * TTL
    other = uuid4()
    assert [
        (await claim(store, other, after, account=a, started=after)).claimed
        for a in ("1", "2", "3", "4")
    ] == [False, False, True, True]


async def test_runs_racing_for_the_same_accounts_never_both_get_one(claim_kit: StoreKit) -> None:
    accounts = [str(17841400000000100 + n) for n in range(20)]
    runs = [uuid4() for _ in range(3)]

    async def run(run_id: UUID) -> list[str]:
        # each run its own store, as each process has its own connections
        async with claim_kit.open() as own:
            claims = [claim(own, run_id, T0, account=a) for a in accounts]
            got = await asyncio.gather(*claims)
            return [a for a, c in zip(accounts, got, strict=True) if c.claimed]

    won = await asyncio.gather(*(run(r) for r in runs))

    assert sorted(a for w in won for a in w) == accounts


async def test_claims_reports_the_holder_and_releases_only_what_it_holds(store: Store) -> None:
    now = [T0]
    ours = Claims(store, uuid4(), ttl_s=60, clock=lambda: now[0])
    other = Claims(store, uuid4(), ttl_s=60, clock=lambda: now[0])
    row = UserToken(u_id=ALICE, access_token=SecretStr("EAAG-x"), account_id=ACCOUNT)
    window = plan_window(T0).requested

    assert (await ours.take(row) or pytest.fail("no claim")).claimed is True
    skipped = await other.check(row, window)
    assert skipped is not None
    assert (skipped.success, skipped.skipped, skipped.errors) == (True, True, [])
    assert skipped.notes == [f"{SKIPPED} (claimed until 2026-11-30T12:01:00+00:00)"]

    await other.release(row)  # holds nothing: the claim stays
    assert (await other.take(row) or pytest.fail("no claim")).claimed is False
    assert (ours.held, other.held) == (1, 0)
    now[0] = T0 + timedelta(seconds=30)
    await ours.release(row)
    assert ours.held == 0

    done = await other.check(row, window)  # finished while `other` ran: not again
    assert done is not None
    assert done.notes == [f"{DONE} (finished at 2026-11-30T12:00:30+00:00)"]
    now[0] = T0 + timedelta(seconds=31)
    next_run = Claims(store, uuid4(), ttl_s=60, clock=lambda: now[0])
    assert await next_run.check(row, window) is None  # the next run syncs it
    assert next_run.held == 1


async def test_rows_without_an_account_take_no_claim(store: Store) -> None:
    claims = Claims(store, uuid4())
    no_account = UserToken(u_id=ALICE, access_token=SecretStr("EAAG-x"))
    bad = BadTokenRow(token_id="x", u_id="y", account_id=ACCOUNT, problem="bad")
    assert await claims.take(no_account) is None
    assert await claims.take(bad) is None


# --- in sync_all ---


async def _seeded(path: Path, *accounts: str) -> dict[str, UUID]:
    users = {a: uuid4() for a in accounts}
    async with SQLiteStore(path) as store:
        for account, user in users.items():
            token = SecretStr(f"EAAG-claims-{account}")
            await store.save_token(UserToken(u_id=user, access_token=token, account_id=account))
    return users


async def _sync(sim: Simulator, store: Store, **options: Any) -> SyncReport:
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport()
    ) as graph:
        return await sync_all(
            graph, store, metrics=DEFAULT_METRICS, plan=plan_window(NOW), now=NOW, **options
        )


def _calls(sim: Simulator, account: str) -> int:
    return sum(account in r.path for r in sim.requests)


async def test_sync_all_skips_an_account_another_run_holds_and_syncs_a_crashed_runs(
    tmp_path: Path,
) -> None:
    held, crashed, free = "17841400000000011", "17841400000000012", "17841400000000013"
    sim = Simulator([SimAccount(a) for a in (held, crashed, free)], now=lambda: NOW)
    users = await _seeded(tmp_path / "igsync.db", held, crashed, free)
    now = datetime.now(UTC)
    async with SQLiteStore(tmp_path / "igsync.db") as store:
        await claim_one(store, users[held], held, uuid4(), now, now + TTL, now)
        then = now - 2 * TTL
        await claim_one(store, users[crashed], crashed, uuid4(), then, now - TTL, then)
        report = await _sync(sim, store)
        later = datetime.now(UTC)
        leftover = await claim_one(store, users[free], free, uuid4(), later, later, later)

    by_account = {r.account_id: r for r in report.results}
    assert (report.success, report.accounts_total, report.accounts_ok) == (True, 3, 2)
    assert (report.accounts_skipped, report.accounts_failed) == (1, 0)
    assert by_account[held].skipped is True
    assert by_account[held].notes[0].startswith(f"{SKIPPED} (claimed until ")
    assert _calls(sim, held) == 0
    assert _calls(sim, crashed) > 0
    assert by_account[crashed].total_inserted > 0
    assert leftover.claimed is True  # the run released what it took


async def test_a_dry_run_takes_no_claims(tmp_path: Path) -> None:
    sim = Simulator([SimAccount(ACCOUNT)], now=lambda: NOW)
    users = await _seeded(tmp_path / "igsync.db", ACCOUNT)
    now = datetime.now(UTC)
    async with SQLiteStore(tmp_path / "igsync.db") as store:
        other = uuid4()
        await claim_one(store, users[ACCOUNT], ACCOUNT, other, now, now + TTL, now)
        report = await _sync(sim, store, dry_run=True)
        holder = await claim_one(store, users[ACCOUNT], ACCOUNT, uuid4(), now, now + TTL, now)

    assert (report.accounts_ok, report.accounts_skipped) == (1, 0)
    assert holder.claimed_by == other


async def test_a_running_run_keeps_its_claims_alive_and_a_stopped_one_loses_them(
    store: Store,
) -> None:
    row = UserToken(u_id=ALICE, access_token=SecretStr("EAAG-x"), account_id=ACCOUNT)
    running = Claims(store, uuid4(), ttl_s=0.6)
    await running.take(row)

    async with running.renewing():
        await asyncio.sleep(1.0)  # past the first expiry: renewed every 0.2 s
        later = Claims(store, uuid4())
        assert (await later.take(row) or pytest.fail("no claim")).claimed is False

    await asyncio.sleep(0.8)  # renewals stopped, as when a run dies: the claim lapses
    assert (await Claims(store, uuid4()).take(row) or pytest.fail("no claim")).claimed is True
