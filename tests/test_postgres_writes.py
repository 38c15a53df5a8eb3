"""PostgreSQL's per-account writes in few statements (issue 9, CPU per account).

Statements are counted on the wire (tests/pg_wire.py: a proxy in front of the suite's real
server counting the Parse and Query messages clients send), not timed. For the accounts that
ended together `sync_all` sends one statement per upsert (it verifies its own count: no BEGIN
or COMMIT) and one that writes their sync logs and releases their claims; an account alone,
the same for its own; claims are taken a page at a time.
The guarantees stay: a short count writes nothing, a sync log and its release happen both or
neither, a dead server is StoreUnavailableError.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from psycopg.types.array import BaseListDumper
from pydantic import SecretStr

from igsync.catalogue import DEFAULT_METRICS
from igsync.errors import StoreError, StoreUnavailableError
from igsync.graph import GraphClient
from igsync.models import InsightRow, MediaRow, SyncLog, SyncReport, UserToken
from igsync.simulator import SimAccount, Simulator
from igsync.store.postgres import PostgresStore
from igsync.sync import RunContext, gather_account, record_group
from igsync.sync_all import sync_all
from igsync.tokens import account_from_token
from igsync.window import plan_window
from pg_wire import WireCounter, wire_counter
from postgres_server import PostgresUnavailableError, ServerControl, stoppable_postgres_server

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)
USER = uuid4()
ACCOUNT = "17841400000000042"
REFUSED = "17841400000000666"
METRICS = ("reach", "views", "follower_count", "accounts_engaged")


@pytest.fixture
async def wire(fresh_postgres_url: str) -> AsyncIterator[WireCounter]:
    async with wire_counter(fresh_postgres_url) as counter:
        yield counter


@pytest.fixture
async def store(wire: WireCounter) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(wire.url) as opened:
        yield opened


async def sql(url: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(query, params)
        return await cursor.fetchall() if cursor.description else []


async def trigger(url: str, table: str, when: str, body: str) -> None:
    """A row trigger `when` (e.g. `before insert`) on `table` running `body` (plpgsql)."""
    name = f"t_{uuid4().hex[:8]}"
    await sql(
        url,
        f"create function {name}() returns trigger language plpgsql as $$ begin {body} end $$",
    )
    await sql(
        url, f"create trigger {name} {when} on {table} for each row execute function {name}()"
    )


def insight(
    metric: str, value: int | None = 1, account_id: str = ACCOUNT, **more: Any
) -> InsightRow:
    return InsightRow(
        u_id=USER,
        account_id=account_id,
        metric=metric,
        metric_type="time_series",
        period="day",
        end_time=datetime(2026, 11, 20, 8, tzinfo=UTC),
        value=value,
        **more,
    )


def log_of(run_id: UUID, account_id: str = ACCOUNT, finished_at: datetime = NOW) -> SyncLog:
    return SyncLog(
        run_id=run_id,
        u_id=USER,
        account_id=account_id,
        started_at=finished_at - timedelta(seconds=2),
        finished_at=finished_at,
        status="ok",
        total_inserted=4,
        total_errors=0,
        errors=[],
        streams=["account"],
    )


async def claim(
    store: PostgresStore,
    run_id: UUID,
    account_id: str = ACCOUNT,
    at: datetime = NOW,
    ttl: timedelta = timedelta(minutes=5),
) -> bool:
    """Whether `run_id` took the account's claim at `at`, a run started then."""
    taken = await store.claim_accounts([(USER, account_id)], run_id, at, at + ttl, at)
    return taken[(USER, account_id)].claimed


async def claim_state(url: str, account_id: str = ACCOUNT) -> tuple[Any, ...]:
    rows = await sql(
        url,
        "select claimed_until, released_at from igsync_claims where account_id = %s",
        [account_id],
    )
    return rows[0]


async def backend_pid(store: PostgresStore) -> int:
    rows = await store._fetch("could not read the backend", "select pg_backend_pid()", {})
    return int(rows[0][0])


def transaction_blocks(wire: WireCounter) -> list[str]:
    return [q for q in wire.sql if q.strip().lower() in {"begin", "commit", "rollback"}]


# --- one account's writes ---


async def test_an_accounts_upsert_sync_log_and_release_are_two_statements(
    store: PostgresStore, wire: WireCounter, fresh_postgres_url: str
) -> None:
    run = uuid4()
    assert await claim(store, run)
    finished = NOW + timedelta(seconds=3)
    wire.reset()

    async with store.session():
        assert await store.upsert_insights([insight(m) for m in METRICS]) == len(METRICS)
        await store.write_sync_logs([log_of(run, finished_at=finished)])
        assert await store.release_claim(USER, ACCOUNT, run, NOW + timedelta(seconds=9)) is True

    # the upsert, then the sync log with the release: no BEGIN, COMMIT, or third statement
    assert (wire.statements, wire.round_trips) == (2, 2), wire.sql
    assert transaction_blocks(wire) == []
    assert len(await store.read_insights()) == len(METRICS)
    assert await claim_state(fresh_postgres_url) == (finished, finished)
    logged = await sql(fresh_postgres_url, "select run_id, account_id from instagram_sync_logs")
    assert logged == [(run, ACCOUNT)]
    # released: a run started after it takes it
    later = finished + timedelta(seconds=1)
    assert await claim(store, uuid4(), at=later)


async def test_a_sync_log_outside_a_session_or_of_a_run_without_claims_touches_no_claim(
    store: PostgresStore, wire: WireCounter, fresh_postgres_url: str
) -> None:
    claiming, unclaimed = uuid4(), uuid4()
    assert await claim(store, claiming)
    wire.reset()

    await store.write_sync_logs([log_of(claiming)])  # no session: the release is its own call
    async with store.session():
        # a run that took no claim (a `fetch`): the role may have no right on igsync_claims
        await store.write_sync_logs([log_of(unclaimed)])

    assert not any("igsync_claims" in q for q in wire.sql), wire.sql
    assert (await claim_state(fresh_postgres_url))[1] is None  # still held
    wire.reset()
    assert await store.release_claim(USER, ACCOUNT, claiming, NOW) is True
    assert wire.statements == 1
    assert await claim_state(fresh_postgres_url) == (NOW, NOW)


async def test_a_refused_sync_log_releases_nothing_and_the_release_then_goes_alone(
    store: PostgresStore, wire: WireCounter, fresh_postgres_url: str
) -> None:
    await trigger(
        fresh_postgres_url,
        "instagram_sync_logs",
        "before insert",
        f"if new.account_id = '{REFUSED}' then raise exception 'log refused by a test'; end if;"
        " return new;",
    )
    run = uuid4()
    assert await claim(store, run, REFUSED)

    async with store.session():
        with pytest.raises(StoreError, match="could not write the sync log: log refused by a test"):
            await store.write_sync_logs([log_of(run, REFUSED)])
        # neither happened: the claim is still held
        assert (await claim_state(fresh_postgres_url, REFUSED))[1] is None
        wire.reset()
        assert await store.release_claim(USER, REFUSED, run, NOW) is True

    assert wire.statements == 1  # the release's own statement
    assert await claim_state(fresh_postgres_url, REFUSED) == (NOW, NOW)
    assert await sql(fresh_postgres_url, "select count(*) from instagram_sync_logs") == [(0,)]


async def test_a_claim_another_run_took_over_is_not_released_by_the_sync_log(
    store: PostgresStore, fresh_postgres_url: str
) -> None:
    run, other = uuid4(), uuid4()
    assert await claim(store, run)
    # the claim lapsed and another run took it (claims.py: a crashed or stalled run)
    later = NOW + timedelta(hours=1)
    assert await claim(store, other, at=later)

    async with store.session():
        await store.write_sync_logs([log_of(run, finished_at=later)])
        assert await store.release_claim(USER, ACCOUNT, run, later) is False

    claimed_by = await sql(fresh_postgres_url, "select claimed_by, released_at from igsync_claims")
    assert claimed_by == [(other, None)]
    assert await sql(fresh_postgres_url, "select count(*) from instagram_sync_logs") == [(1,)]


# --- the upsert verifies its own count ---


async def test_a_short_count_on_insert_writes_nothing_in_one_statement(
    store: PostgresStore, wire: WireCounter, fresh_postgres_url: str
) -> None:
    await trigger(
        fresh_postgres_url,
        "instagram_insights",
        "before insert",
        f"if new.account_id = '{REFUSED}' then return null; end if; return new;",
    )
    batch = [insight("reach"), insight("views"), insight("reach", account_id=REFUSED)]

    async with store.session():
        pid = await backend_pid(store)
        wire.reset()
        with pytest.raises(StoreError) as raised:
            await store.upsert_insights(batch)
        assert (wire.statements, transaction_blocks(wire)) == (1, [])
        # the same connection goes on: the failed statement left no transaction open
        assert await store.upsert_audience([]) == 0
        assert await backend_pid(store) == pid

    assert str(raised.value) == "PostgreSQL confirmed 2 of 3 insight rows; nothing written"
    assert await store.read_insights() == []
    assert await store.upsert_insights(batch[:2]) == 2


async def test_a_short_count_on_update_keeps_every_stored_value(
    store: PostgresStore, fresh_postgres_url: str
) -> None:
    assert await store.upsert_insights([insight("reach", 1), insight("views", 1)]) == 2
    await trigger(
        fresh_postgres_url,
        "instagram_insights",
        "before update",
        "if new.metric = 'views' then return null; end if; return new;",
    )

    with pytest.raises(StoreError, match="confirmed 1 of 2 insight rows; nothing written"):
        await store.upsert_insights([insight("reach", 7), insight("views", 7)])

    assert sorted((r.metric, r.value) for r in await store.read_insights()) == [
        ("reach", 1),
        ("views", 1),
    ]


# --- typed arrays ---


@pytest.fixture
def no_list_guessing(monkeypatch: pytest.MonkeyPatch) -> None:
    """psycopg's scan of a plain list's elements (to guess their type) fails the test."""

    def scan(*args: Any) -> Any:
        raise AssertionError("psycopg scanned a list's elements to guess their type")

    monkeypatch.setattr(BaseListDumper, "_find_list_element", scan)


async def test_arrays_go_typed_and_every_value_comes_back(
    store: PostgresStore, no_list_guessing: None
) -> None:
    jsons: list[Any] = [{"a": [1, None], "b": "ü"}, [1, 2, 3], [[1], [2, 3]], "text", 7, None]
    rows = [
        insight(f"m{i}", value, value_json=j)
        for i, (value, j) in enumerate(
            zip([2**63 - 1, -(2**63), 0, None, 5, 6], jsons, strict=True)
        )
    ]
    media = [
        MediaRow(u_id=USER, account_id=ACCOUNT, media_id="1", timestamp=NOW, like_count=3),
        MediaRow(u_id=USER, account_id=ACCOUNT, media_id="2", permalink="https://x/é"),
    ]

    assert await store.upsert_insights(rows) == len(rows)
    assert await store.upsert_media(media) == len(media)

    assert {r.metric: (r.value, r.value_json) for r in await store.read_insights()} == {
        r.metric: (r.value, r.value_json) for r in rows
    }
    assert await store.read_media() == media


# --- sync_all end to end ---


async def _sync(sim: Simulator, store: PostgresStore) -> SyncReport:
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport()
    ) as graph:
        return await sync_all(
            graph, store, metrics=DEFAULT_METRICS, plan=plan_window(NOW), now=NOW, concurrency=4
        )


async def test_sync_all_logs_and_releases_each_account_when_a_log_is_refused(
    store: PostgresStore, wire: WireCounter, fresh_postgres_url: str
) -> None:
    accounts = [f"1784140000000{i:04d}" for i in range(1, 13)]
    sim = Simulator([SimAccount(a, tz="Europe/Berlin") for a in accounts], now=lambda: NOW)
    await trigger(
        fresh_postgres_url,
        "instagram_sync_logs",
        "before insert",
        f"if new.account_id = '{accounts[-1]}' then raise exception 'log refused'; end if;"
        " return new;",
    )

    async def add(some: list[str]) -> None:
        for account in some:
            token = SecretStr(sim.issue_token(account))
            await store.save_token(UserToken(u_id=uuid4(), access_token=token, account_id=account))

    await add(accounts[:4])
    wire.reset()
    first = await _sync(sim, store)
    four = wire.statements
    await add(accounts[4:])
    wire.reset()
    second = await _sync(sim, store)
    twelve = wire.statements

    # At most 2 an account: the upsert, the sync log with its release (fewer for accounts
    # written together); plus the release of the account whose log was refused, on its own,
    # and its group's refused statement. Each run also reads the pages of user_tokens and
    # claims a page of accounts: as many statements for 4 accounts as for 12.
    assert twelve - four <= 2 * 8 + 1 + 1, wire.sql
    assert (first.accounts_ok, second.accounts_ok) == (4, 12)
    by_account = {r.account_id: r for r in second.results}
    assert by_account[accounts[-1]].sync_log_error is not None
    assert all(r.sync_log_error is None for a, r in by_account.items() if a != accounts[-1])
    logs = await sql(
        fresh_postgres_url,
        "select account_id, count(*) from instagram_sync_logs group by 1 order by 1",
    )
    assert logs == [(a, 2 if a in accounts[:4] else 1) for a in accounts[:-1]]
    # every claim given back, each at its last sync log's end when the log carried it
    claims = await sql(
        fresh_postgres_url,
        "select c.account_id, c.released_at is not distinct from"
        " (select max(finished_at) from instagram_sync_logs l where l.account_id = c.account_id)"
        " from igsync_claims c where released_at is not null order by 1",
    )
    assert claims == [(a, a != accounts[-1]) for a in accounts]


async def test_a_group_of_accounts_is_one_upsert_and_one_statement_of_logs_and_releases(
    store: PostgresStore, wire: WireCounter, fresh_postgres_url: str
) -> None:
    accounts = [f"1784140000000{i:04d}" for i in range(1, 9)]
    sim = Simulator([SimAccount(a, tz="Europe/Berlin") for a in accounts], now=lambda: NOW)
    tokens = [
        UserToken(u_id=uuid4(), access_token=SecretStr(sim.issue_token(a)), account_id=a)
        for a in accounts
    ]
    await store.save_tokens(tokens)
    async with GraphClient(
        base_url="http://sim", version="v27.0", transport=sim.transport()
    ) as graph:
        ctx = RunContext.create(
            graph, store, plan=plan_window(NOW), metrics=DEFAULT_METRICS, now=NOW
        )
        keys = [(t.u_id, a) for t, a in zip(tokens, accounts, strict=True)]
        ttl = timedelta(minutes=5)
        claimed = await store.claim_accounts(keys, ctx.run_id, NOW, NOW + ttl, NOW)
        assert all(c.claimed for c in claimed.values())
        gathered = [await gather_account(ctx, account_from_token(t)) for t in tokens]
    wire.reset()
    async with store.session():
        results = await record_group(ctx, gathered)
        # told of by the sync logs' statement: no statement of their own
        assert [await store.release_claim(*key, ctx.run_id, NOW) for key in keys] == [True] * 8

    # one upsert of every account's rows, then their logs with their claims' releases
    assert (wire.statements, wire.round_trips) == (2, 2), wire.sql
    assert transaction_blocks(wire) == []
    assert results is not None
    assert [r.success for r in results] == [True] * 8
    rows = await store.read_insights()
    assert len(rows) == sum(r.total_inserted for r in results) > 0
    released = await sql(
        fresh_postgres_url,
        "select c.account_id from igsync_claims c join instagram_sync_logs l"
        " on l.account_id = c.account_id and l.finished_at = c.released_at order by 1",
    )
    assert released == [(a,) for a in accounts]


async def test_a_group_whose_logs_are_refused_writes_no_log_and_releases_no_claim(
    store: PostgresStore, fresh_postgres_url: str
) -> None:
    run = uuid4()
    assert await claim(store, run)
    assert await claim(store, run, account_id=REFUSED)
    await trigger(
        fresh_postgres_url,
        "instagram_sync_logs",
        "before insert",
        f"if new.account_id = '{REFUSED}' then return null; end if; return new;",
    )
    async with store.session():
        with pytest.raises(StoreError, match="confirmed 1 of 2 sync log rows; nothing written"):
            await store.write_sync_logs([log_of(run), log_of(run, account_id=REFUSED)])
    assert await sql(fresh_postgres_url, "select count(*) from instagram_sync_logs") == [(0,)]
    assert (await claim_state(fresh_postgres_url))[1] is None  # still held


# --- a dead server ---


@pytest.fixture
def server() -> Iterator[ServerControl]:
    """A PostgreSQL server of this test's own: it gets stopped."""
    try:
        with stoppable_postgres_server() as control:
            yield control
    except PostgresUnavailableError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL is required when CI=true: {exc}", pytrace=False)
        pytest.skip(str(exc))


async def test_a_server_stopped_mid_session_is_unavailable_for_the_log_and_the_release(
    server: ServerControl,
) -> None:
    run = uuid4()
    async with PostgresStore(server.url) as store, store.session():
        assert await claim(store, run)
        assert await store.upsert_insights([insight("reach")]) == 1
        server.stop()
        with pytest.raises(StoreUnavailableError, match="stopped answering"):
            await store.write_sync_logs([log_of(run)])
        with pytest.raises(StoreUnavailableError):
            await store.release_claim(USER, ACCOUNT, run, NOW)
        with pytest.raises(StoreUnavailableError):
            await store.upsert_insights([insight("views")])
