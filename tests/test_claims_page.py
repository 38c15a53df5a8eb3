"""Claims a page at a time (issue 9): `Store.claim_accounts` and `sync_all`'s use of it.

One call decides many accounts with the same compare-and-swap as one account alone: on SQLite,
the real PostgreSQL and the fake Supabase, a page mixing free, held, crashed and released
accounts ends each as a claim of its own would, and runs claiming overlapping pages at once
never both get an account. `sync_all` claims the accounts it queues a page at a time (store
calls counted by wrapping the store's method), renews the claims of accounts waiting in its
queue, fails a page whose claim failed account by account, and leaves the claims of accounts
it never started to expire when the store stops answering.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.claims import CLAIM_TTL_S, SKIPPED, Claims
from igsync.errors import StoreError, StoreUnavailableError
from igsync.graph import GraphClient
from igsync.models import AccountClaim, BadTokenRow, InsightRow, SyncReport, TokenRow, UserToken
from igsync.simulator import SimAccount, Simulator
from igsync.store import Store
from igsync.store.sqlite import SQLiteStore
from igsync.sync_all import CLAIM_PAGE, sync_all
from igsync.window import plan_window
from store_kits import KITS, StoreKit
from test_claims import claim_kit as claim_kit
from test_claims import store as store

pytestmark = pytest.mark.anyio

ALICE, BOB = uuid4(), uuid4()
T0 = datetime(2026, 11, 30, 12, tzinfo=UTC)
TTL = timedelta(minutes=6)
NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # the simulator's clock and the runs' window
_ACCOUNT = iter(range(17841400000100000, 17841400000200000))

Key = tuple[UUID, str]


@pytest.fixture(params=["sqlite", "postgres"])
async def db_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """A store with a database of its own (the statements are what is counted)."""
    async with KITS[request.param](request, tmp_path).open() as opened:
        yield opened


def account() -> str:
    return str(next(_ACCOUNT))


async def claim(
    store: Store, run: UUID, at: datetime, keys: Sequence[Key], *, started: datetime = T0
) -> dict[Key, AccountClaim]:
    """`run` (started at `started`) claims `keys` at `at` for TTL, in one call."""
    return await store.claim_accounts(keys, run, at, at + TTL, started)


async def test_one_call_decides_each_account_as_a_claim_of_its_own_would(store: Store) -> None:
    ours, other = uuid4(), uuid4()
    asked = T0 + timedelta(minutes=10)  # our run started at T0
    free, held, released_after, released_before, crashed, mine = (account() for _ in range(6))
    # another run holds `held` until past `asked`
    await claim(store, other, asked - timedelta(minutes=1), [(ALICE, held)])
    # another run finished `released_after` while ours ran: done, not again
    await claim(store, other, T0, [(ALICE, released_after)])
    assert await store.release_claim(ALICE, released_after, other, T0 + timedelta(minutes=5))
    # ... and `released_before` before ours started: the next run's to take
    await claim(store, other, T0 - TTL, [(ALICE, released_before)])
    assert await store.release_claim(ALICE, released_before, other, T0 - timedelta(minutes=1))
    # a crashed run's claim, expired before `asked`
    await claim(store, other, asked - 2 * TTL, [(ALICE, crashed)])
    # ours already
    await claim(store, ours, asked - timedelta(minutes=1), [(ALICE, mine)])

    page = [
        (ALICE, free),
        (ALICE, held),
        (BOB, held),  # the same account id of another user is another claim
        (ALICE, released_after),
        (ALICE, released_before),
        (ALICE, crashed),
        (ALICE, mine),
        (ALICE, free),  # asked twice: one entry
    ]
    got = await claim(store, ours, asked, page)

    assert list(got) == list(dict.fromkeys(page))
    summary = {
        key: (c.claimed, c.claimed_by, c.claimed_until, c.released_at) for key, c in got.items()
    }
    assert summary == {
        (ALICE, free): (True, ours, asked + TTL, None),
        (ALICE, held): (False, other, asked - timedelta(minutes=1) + TTL, None),
        (BOB, held): (True, ours, asked + TTL, None),
        (ALICE, released_after): (
            False,
            other,
            T0 + timedelta(minutes=5),
            T0 + timedelta(minutes=5),
        ),
        (ALICE, released_before): (True, ours, asked + TTL, None),
        (ALICE, crashed): (True, ours, asked + TTL, None),
        # held already (its expiry: the new one on SQLite and PostgreSQL, the old one on
        # Supabase, whose read-then-update leaves a claim this run holds as it is)
        (ALICE, mine): (True, ours, summary[(ALICE, mine)][2], None),
    }
    # what it took is ours now: a third run, started with ours, finds every one held or done
    third = await claim(store, uuid4(), asked + timedelta(seconds=1), page, started=T0)
    assert {key: c.claimed_by for key, c in third.items()} == {
        key: ours if c.claimed else other for key, c in got.items()
    }
    assert not any(c.claimed for c in third.values())


async def test_an_empty_page_is_an_empty_answer(store: Store) -> None:
    assert await claim(store, uuid4(), T0, []) == {}


async def test_runs_claiming_overlapping_pages_at_once_never_both_get_one(
    claim_kit: StoreKit,
) -> None:
    accounts = [account() for _ in range(30)]
    # each run a window of 20 of the 30, in its own order: every account is asked for by
    # two or three runs at once
    pages = [
        [(ALICE, a) for a in accounts[0:20]],
        [(ALICE, a) for a in reversed(accounts[10:30])],
        [(ALICE, a) for a in accounts[5:25][::2] + accounts[5:25][1::2]],
    ]
    runs = [uuid4() for _ in pages]

    async def run(run_id: UUID, page: list[Key]) -> list[str]:
        # each run its own store, as each process has its own connections
        async with claim_kit.open() as own:
            got = await claim(own, run_id, T0, page)
            assert set(got) == set(page)
            return [key[1] for key, c in got.items() if c.claimed]

    won = await asyncio.gather(*(run(r, p) for r, p in zip(runs, pages, strict=True)))

    assert sorted(a for w in won for a in w) == sorted(accounts)


async def test_claims_take_a_page_of_rows_in_one_call_and_skip_rows_without_a_claim(
    db_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_claim_calls(db_store, monkeypatch)
    first, held = account(), account()
    rows: list[TokenRow] = [
        UserToken(u_id=ALICE, access_token=SecretStr("EAAG-a"), account_id=first),
        UserToken(u_id=ALICE, access_token=SecretStr("EAAG-b")),  # no account id
        BadTokenRow(token_id="x", u_id="y", account_id=first, problem="bad"),
        UserToken(u_id=ALICE, access_token=SecretStr("EAAG-c"), account_id=held),
    ]
    other = Claims(db_store, uuid4())
    await other.take(rows[3])
    ours = Claims(db_store, uuid4())
    window = plan_window(NOW).requested

    decided = await ours.check_many(rows, window)

    assert decided[:3] == [None, None, None]
    skipped = decided[3]
    assert skipped is not None
    assert (skipped.skipped, skipped.account_id) == (True, held)
    assert skipped.notes[0].startswith(f"{SKIPPED} (claimed until ")
    assert ours.held == 1
    # other's take, then ours: one call for both accounts of the page
    assert calls == [[(ALICE, held)], [(ALICE, first), (ALICE, held)]]
    assert await ours.check_many(rows[1:3], window) == [None, None]
    assert len(calls) == 2  # no claim to take: no call
    await ours.release(rows[0])
    assert ours.held == 0


# --- in sync_all ---


def count_claim_calls(store: Store, monkeypatch: pytest.MonkeyPatch) -> list[list[Key]]:
    """Record each `claim_accounts` call's keys: a thin wrapper on the store's own method."""
    calls: list[list[Key]] = []
    real = store.claim_accounts

    async def counted(keys: Sequence[Key], *args: Any) -> dict[Key, AccountClaim]:
        calls.append(list(keys))
        return await real(keys, *args)

    monkeypatch.setattr(store, "claim_accounts", counted)
    return calls


async def seed(store: Store, sim: Simulator, accounts: Sequence[str]) -> None:
    for a in accounts:
        token = SecretStr(sim.issue_token(a))
        await store.save_token(UserToken(u_id=uuid4(), access_token=token, account_id=a))


async def run_sync(sim: Simulator, store: Store, **options: Any) -> SyncReport:
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport()
    ) as graph:
        return await sync_all(
            graph, store, metrics=DEFAULT_METRICS, plan=plan_window(NOW), now=NOW, **options
        )


async def test_sync_all_claims_the_accounts_it_queues_a_page_per_call(
    db_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = [account() for _ in range(2 * CLAIM_PAGE + 2)]
    sim = Simulator([SimAccount(a) for a in accounts], now=lambda: NOW)
    await seed(db_store, sim, accounts)
    calls = count_claim_calls(db_store, monkeypatch)

    report = await run_sync(sim, db_store, concurrency=4)

    assert (report.accounts_ok, report.accounts_total) == (len(accounts), len(accounts))
    # 130 accounts, three statements (PostgreSQL) or transactions (SQLite), not 130
    assert [len(keys) for keys in calls] == [CLAIM_PAGE, CLAIM_PAGE, 2]
    assert len(calls) == math.ceil(len(accounts) / CLAIM_PAGE)
    assert sorted(key[1] for keys in calls for key in keys) == sorted(accounts)
    # every claim was released: a run started now takes every account
    later = datetime.now(UTC) + timedelta(seconds=1)
    keys = [key for page in calls for key in page]
    after = await db_store.claim_accounts(keys, uuid4(), later, later + TTL, later)
    assert all(c.claimed for c in after.values())


async def test_accounts_waiting_in_the_queue_keep_their_claims(tmp_path: Path) -> None:
    accounts = [account() for _ in range(6)]
    # one account at a time, each at least one 0.3 s round trip: the last one waits in the
    # queue for 1.5 s or more, its claim (0.6 s) renewed every 0.2 s meanwhile
    sim = Simulator([SimAccount(a) for a in accounts], now=lambda: NOW, latency=0.3)
    async with SQLiteStore(tmp_path / "igsync.db") as store:
        await seed(store, sim, accounts)
        rows = [t for t in await store.list_tokens() if t.account_id == accounts[-1]]
        probe = Claims(store, uuid4())

        async def probe_later() -> AccountClaim | None:
            await asyncio.sleep(1.0)  # past the first expiry of the run's first page
            return await probe.take(rows[0])

        report, probed = await asyncio.gather(
            run_sync(sim, store, concurrency=1, claim_ttl_s=0.6), probe_later()
        )

    assert probed is not None
    assert probed.claimed is False  # the run held it while it waited in the queue
    assert probe.held == 0
    by_account = {r.account_id: r for r in report.results}
    assert by_account[accounts[-1]].success
    assert not by_account[accounts[-1]].skipped
    assert report.accounts_ok == len(accounts)


class ClaimFailing(SQLiteStore):
    """A SQLite store whose claims fail with `error`."""

    def __init__(self, path: Path, error: StoreError) -> None:
        super().__init__(path)
        self.error = error

    async def claim_accounts(self, *args: Any, **kwargs: Any) -> dict[Key, AccountClaim]:
        raise self.error


async def test_a_failed_page_claim_fails_each_of_its_accounts_without_a_graph_call(
    tmp_path: Path,
) -> None:
    accounts = [account() for _ in range(3)]
    sim = Simulator([SimAccount(a) for a in accounts], now=lambda: NOW)
    error = StoreError("PostgreSQL could not claim account 1: its claim changed 5 times")
    async with ClaimFailing(tmp_path / "igsync.db", error) as store:
        await seed(store, sim, accounts)
        report = await run_sync(sim, store)
    assert sim.requests == []
    assert (report.accounts_failed, report.accounts_not_attempted) == (3, 0)
    assert report.stopped is None
    for r in report.results:
        assert r.errors == [f"store: {error}"]
        assert r.sync_log_error is None  # each failure is in the sync logs
    with closing(sqlite3.connect(tmp_path / "igsync.db")) as conn:
        logged = conn.execute("select account_id, status from instagram_sync_logs").fetchall()
    assert sorted(logged) == sorted((a, "failed") for a in accounts)


async def test_a_page_claim_on_a_dead_store_leaves_its_accounts_not_attempted(
    tmp_path: Path,
) -> None:
    accounts = [account() for _ in range(3)]
    sim = Simulator([SimAccount(a) for a in accounts], now=lambda: NOW)
    dead = StoreUnavailableError("PostgreSQL stopped answering: connection refused")
    async with ClaimFailing(tmp_path / "igsync.db", dead) as store:
        await seed(store, sim, accounts)
        report = await run_sync(sim, store)
    assert sim.requests == []
    assert report.accounts_not_attempted == 3
    assert report.stopped == f"the store stopped answering ({dead})"
    assert all(r.errors == [f"not attempted: {report.stopped}"] for r in report.results)


class DiesAfterWrites(SQLiteStore):
    """A SQLite store that stops answering at its upsert number `writes + 1`: upserts, claims,
    releases and (with `renewals_fail`) renewals; it records each call it refused."""

    def __init__(self, path: Path, writes: int, *, renewals_fail: bool) -> None:
        super().__init__(path)
        self.writes_left = writes
        self.renewals_fail = renewals_fail
        self.refused: list[str] = []

    def _check(self, call: str) -> None:
        if self.writes_left < 0:
            self.refused.append(call)
            raise StoreUnavailableError("PostgreSQL stopped answering: connection refused")

    async def upsert_insights(self, rows: Sequence[InsightRow]) -> int:
        self.writes_left -= 1
        self._check("upsert")
        return await super().upsert_insights(rows)

    async def release_claim(self, *args: Any) -> bool:
        self._check("release")
        return await super().release_claim(*args)

    async def claim_accounts(self, *args: Any, **kwargs: Any) -> dict[Key, AccountClaim]:
        self._check("claim")
        return await super().claim_accounts(*args, **kwargs)

    async def renew_claims(self, run_id: UUID, until: datetime) -> int:
        if self.renewals_fail:
            self._check("renew")
        return await super().renew_claims(run_id, until)


@pytest.mark.parametrize("renewals_fail", [False, True])
async def test_a_run_the_store_stopped_ends_the_claims_of_accounts_it_never_finished(
    tmp_path: Path, renewals_fail: bool
) -> None:
    accounts = [account() for _ in range(12)]
    sim = Simulator([SimAccount(a) for a in accounts], now=lambda: NOW)
    path = tmp_path / "igsync.db"
    async with DiesAfterWrites(path, writes=3, renewals_fail=renewals_fail) as store:
        await seed(store, sim, accounts)
        report = await run_sync(sim, store, concurrency=1)
        ended = datetime.now(UTC)

    assert report.stopped is not None
    assert report.accounts_ok == 3
    # no claim and no release tried on the dead store; one call at the end for the rest
    assert store.refused == ["upsert", "renew"] if renewals_fail else ["upsert"]
    not_started = {r.account_id for r in report.results if not r.attempted}
    assert len(not_started) >= len(accounts) - 3 - 2
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "select account_id, claimed_until, released_at from igsync_claims"
        ).fetchall()
    claims = {a: (datetime.fromisoformat(u), r) for a, u, r in rows}
    assert set(claims) == set(accounts)  # the page of 12 was claimed at once
    ok = {r.account_id for r in report.results if r.success}
    assert all(claims[a][1] is not None for a in ok)  # released with their sync logs
    unfinished = set(accounts) - ok
    for a in unfinished:
        until, released = claims[a]
        assert released is None  # not done: no run may count it done
        if renewals_fail:  # left to expire, within one TTL of the run
            assert ended < until <= ended + timedelta(seconds=CLAIM_TTL_S)
        else:  # ended: the next run takes it at once
            assert until <= ended
    async with SQLiteStore(path) as again:
        later = datetime.now(UTC) + timedelta(seconds=1)
        keys = [(t.u_id, t.account_id or "") for t in await again.list_tokens()]
        taken = await again.claim_accounts(keys, uuid4(), later, later + TTL, later)
    assert {k[1] for k, c in taken.items() if c.claimed} == (ok if renewals_fail else set(accounts))
