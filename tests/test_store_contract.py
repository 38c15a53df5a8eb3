"""One contract, every store: the same tests run against SQLite, a real PostgreSQL server and a
fake Supabase (the kits of tests/store_kits.py). Store-specific behaviour (file modes,
connection handling) is tested at the end. The stream tables have their own: test_store_streams.
"""

from __future__ import annotations

import asyncio
import json
import stat
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import psycopg
import pytest
from pydantic import SecretStr

from bad_token_rows import BAD_ROWS, BadRow, insert_sql
from fake_postgrest import FakePostgrest
from igsync.errors import StoreError
from igsync.models import BadTokenRow, InsightRow, SyncLog, TokenUpdate, UserToken
from igsync.redact import redact
from igsync.store import Store, iter_tokens
from igsync.store.postgres import PostgresStore
from igsync.store.sqlite import SQLiteStore
from postgres_server import free_port, login_role
from store_kits import SQLiteKit, StoreKit

pytestmark = pytest.mark.anyio

ALICE = UUID("00000000-0000-4000-8000-00000000a11c")
BOB = UUID("00000000-0000-4000-8000-000000000b0b")
DAY0 = datetime(2026, 11, 20, 8, tzinfo=UTC)


def row(
    day: int = 0,
    value: int | None = 1,
    *,
    metric: str = "reach",
    u_id: UUID = ALICE,
    account_id: str = "1784001",
    end_time: datetime | None = None,
    value_json: Any = None,
) -> InsightRow:
    return InsightRow(
        u_id=u_id,
        account_id=account_id,
        metric=metric,
        metric_type="time_series",
        period="day",
        end_time=end_time or DAY0 + timedelta(days=day),
        value=value,
        value_json=value_json,
    )


def values(rows: list[InsightRow]) -> list[tuple[str, datetime, int | None]]:
    return [(r.metric, r.end_time, r.value) for r in rows]


# --- insights ---


async def test_upsert_inserts_rows_and_returns_the_confirmed_count(store: Store) -> None:
    sent = [row(0, 10), row(1, 11), row(0, 20, metric="profile_views")]

    assert await store.upsert_insights(sent) == 3

    assert sorted(values(await store.read_insights())) == sorted(values(sent))


async def test_upsert_of_nothing_confirms_nothing(store: Store) -> None:
    assert await store.upsert_insights([]) == 0


async def test_reupsert_of_the_same_keys_returns_the_count_and_adds_no_rows(store: Store) -> None:
    sent = [row(day, day) for day in range(5)]
    await store.upsert_insights(sent)

    assert await store.upsert_insights(sent) == 5

    assert len(await store.read_insights()) == 5


async def test_last_value_wins_within_one_batch(store: Store) -> None:
    confirmed = await store.upsert_insights([row(0, 1), row(1, 5), row(0, 2), row(0, 3)])

    assert confirmed == 2  # duplicates of a key collapse before sending
    assert values(await store.read_insights()) == [
        ("reach", DAY0, 3),
        ("reach", DAY0 + timedelta(days=1), 5),
    ]


async def test_last_value_wins_across_batches(store: Store) -> None:
    await store.upsert_insights([row(0, 1, value_json={"a": 1})])
    await store.upsert_insights([row(0, 2, value_json=None)])

    [stored] = await store.read_insights()
    assert (stored.value, stored.value_json) == (2, None)


async def test_null_value_stays_null_and_value_json_round_trips(store: Store) -> None:
    breakdown = {"city": {"Lisbon": 12, "Porto": 3}, "age": [["18-24", 7]], "ok": True}
    await store.upsert_insights([row(0, None), row(1, 15, value_json=breakdown)])

    no_data, with_breakdown = await store.read_insights()
    assert no_data.value is None
    assert no_data.value_json is None
    assert with_breakdown.value == 15
    assert with_breakdown.value_json == breakdown


async def test_the_same_instant_in_any_offset_is_one_utc_key(store: Store) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    local = datetime(2026, 11, 20, 13, 30, tzinfo=kolkata)
    zulu = datetime.fromisoformat("2026-11-20T08:00:00Z")

    assert await store.upsert_insights([row(end_time=local, value=1)]) == 1
    assert await store.upsert_insights([row(end_time=zulu, value=2)]) == 1
    assert (
        await store.upsert_insights([row(end_time=zulu, value=3), row(end_time=local, value=4)])
        == 1
    )

    [stored] = await store.read_insights()
    assert stored.value == 4
    assert stored.end_time == DAY0
    assert stored.end_time.utcoffset() == timedelta(0)


async def test_read_filters_isolate_users_and_accounts(store: Store) -> None:
    await store.upsert_insights(
        [
            row(0, 1, u_id=ALICE, account_id="a1"),
            row(0, 2, u_id=ALICE, account_id="a2"),
            row(0, 3, u_id=BOB, account_id="b1"),
            row(0, 4, u_id=BOB, account_id="a1"),  # same account id, another user
        ]
    )

    def seen(rows: list[InsightRow]) -> set[tuple[UUID, str, int | None]]:
        return {(r.u_id, r.account_id, r.value) for r in rows}

    assert seen(await store.read_insights(u_id=ALICE)) == {(ALICE, "a1", 1), (ALICE, "a2", 2)}
    assert seen(await store.read_insights(u_id=BOB)) == {(BOB, "b1", 3), (BOB, "a1", 4)}
    assert seen(await store.read_insights(account_id="a1")) == {(ALICE, "a1", 1), (BOB, "a1", 4)}
    assert seen(await store.read_insights(u_id=BOB, account_id="a1")) == {(BOB, "a1", 4)}
    assert await store.read_insights(u_id=uuid4()) == []


async def test_daily_rows_carry_their_account_local_date(store: Store, kit: StoreKit) -> None:
    los_angeles = row(account_id="la", end_time=datetime(2026, 11, 20, 8, tzinfo=UTC))
    kolkata = row(account_id="kolkata", end_time=datetime(2026, 11, 20, 18, 30, tzinfo=UTC))
    lifetime = InsightRow(**{**dict(row(account_id="lifetime")), "period": "lifetime"})
    lifetime = lifetime.model_copy(update={"local_date": None})

    assert await store.upsert_insights([los_angeles, kolkata, lifetime]) == 3

    read = {r.account_id: r.local_date for r in await store.read_insights()}
    assert read == {"la": date(2026, 11, 19), "kolkata": date(2026, 11, 20), "lifetime": None}
    # In the column itself, for SQL reports that never go through igsync.
    stored = await kit.sql(
        "select account_id, cast(local_date as text) from instagram_insights order by account_id"
    )
    assert stored == [("kolkata", "2026-11-20"), ("la", "2026-11-19"), ("lifetime", None)]


async def test_a_store_that_confirms_fewer_rows_raises_and_writes_nothing(
    store: Store, kit: StoreKit
) -> None:
    await store.upsert_insights([row(0, 1)])
    await kit.drop_rows_silently("refused")

    with pytest.raises(StoreError, match="confirmed 2 of 3"):
        await store.upsert_insights([row(0, 99), row(1, 2), row(0, 5, account_id="refused")])

    if isinstance(kit, FakePostgrest):
        # Each PostgREST request commits on its own, so what the database confirmed stays
        # written; the store still raises and counts none of it (SupabaseStore docstring).
        return
    assert values(await store.read_insights()) == [("reach", DAY0, 1)]


async def test_init_schema_twice_is_fine_and_keeps_the_data(store: Store) -> None:
    await store.upsert_insights([row(0, 7)])

    await store.init_schema()

    assert values(await store.read_insights()) == [("reach", DAY0, 7)]


async def test_constraint_errors_do_not_echo_the_failing_row(store: Store) -> None:
    # PostgreSQL's "DETAIL: Failing row contains (...)" would print every column of the row.
    marker = f"acct-{uuid4().hex}"
    bad = InsightRow.model_construct(
        **{**dict(row()), "account_id": marker, "metric_type": "no-such-type"}
    )

    with pytest.raises(StoreError) as caught:
        await store.upsert_insights([bad])

    assert "metric_type" in str(caught.value)
    assert marker not in str(caught.value)
    assert await store.read_insights() == []


# --- tokens ---


def token(
    secret: str | None = None, *, u_id: UUID = ALICE, account_id: str = "1784001", **fields: Any
) -> UserToken:
    return UserToken(
        u_id=u_id, account_id=account_id, access_token=secret or f"EAAG{uuid4().hex}", **fields
    )


async def test_saved_tokens_are_listed_by_user(store: Store) -> None:
    expiry = datetime(2027, 1, 20, 12, tzinfo=UTC)
    await store.save_token(token("EAAG-alice-1", account_id="101", expires_at=expiry))
    await store.save_token(token("EAAG-alice-2", account_id="102", token_kind="instagram_login"))
    await store.save_token(token("EAAG-bob-1", u_id=BOB, account_id="201"))

    alice = await store.list_tokens(u_id=ALICE)
    assert [(t.account_id, t.access_token.get_secret_value()) for t in alice] == [
        ("101", "EAAG-alice-1"),
        ("102", "EAAG-alice-2"),
    ]
    assert alice[0].expires_at == expiry
    assert alice[1].token_kind == "instagram_login"
    assert {t.u_id for t in await store.list_tokens()} == {ALICE, BOB}
    assert await store.list_tokens(platform="youtube") == []


async def test_token_pages_walk_every_row_once_in_token_id_order(store: Store) -> None:
    saved = [token(account_id=f"10{i}") for i in range(7)]
    for row in saved:
        await store.save_token(row)
    await store.save_token(token(account_id="900", platform="youtube"))
    pages, after = [], None
    while page := await store.token_page(after=after, limit=3):
        pages.append([t.token_id for t in page])
        after = page[-1].token_id
    assert [len(p) for p in pages] == [3, 3, 1]
    walked = [i for p in pages for i in p]
    assert walked == sorted(r.token_id for r in saved)  # the youtube row is not an instagram one
    assert [t.token_id async for t in iter_tokens(store, page_size=2)] == walked


async def test_saving_the_same_account_replaces_token_and_expiry_in_place(store: Store) -> None:
    first = token("EAAG-old-token", expires_at=datetime(2026, 12, 1, tzinfo=UTC))
    await store.save_token(first)
    [before] = await store.list_tokens()

    new_expiry = datetime(2027, 2, 1, tzinfo=UTC)
    await store.save_token(token("EAAG-new-token", expires_at=new_expiry, status="expiring"))

    [after] = await store.list_tokens()
    assert after.access_token.get_secret_value() == "EAAG-new-token"
    assert (after.expires_at, after.status) == (new_expiry, "expiring")
    assert after.token_id == before.token_id == first.token_id
    assert after.created_at == before.created_at


async def test_update_token_swaps_token_and_expiry_while_the_expected_token_is_stored(
    store: Store,
) -> None:
    await store.save_token(token("EAAG-before-refresh"))
    [before] = await store.list_tokens()
    refreshed_at = datetime(2026, 11, 24, 6, tzinfo=UTC)
    update = TokenUpdate(
        access_token=SecretStr("EAAG-after-refresh"),
        expires_at=refreshed_at + timedelta(days=60),
        status="ok",
        last_refreshed_at=refreshed_at,
    )

    assert await store.update_token(before.token_id, "EAAG-before-refresh", update) is True

    [after] = await store.list_tokens()
    assert after.access_token.get_secret_value() == "EAAG-after-refresh"
    assert (after.expires_at, after.last_refreshed_at) == (update.expires_at, refreshed_at)
    assert after.token_id == before.token_id


async def test_update_token_writes_nothing_when_another_process_changed_it_first(
    store: Store,
) -> None:
    await store.save_token(token("EAAG-current", expires_at=datetime(2026, 12, 1, tzinfo=UTC)))
    [before] = await store.list_tokens()
    update = TokenUpdate(
        access_token=SecretStr("EAAG-late"),
        expires_at=datetime(2027, 3, 1, tzinfo=UTC),
        status="ok",
        last_refreshed_at=None,
    )

    assert await store.update_token(before.token_id, "EAAG-stale", update) is False
    assert await store.update_token(uuid4(), "EAAG-current", update) is False

    [after] = await store.list_tokens()
    assert (after.access_token.get_secret_value(), after.expires_at) == (
        "EAAG-current",
        before.expires_at,
    )


async def test_update_token_without_a_new_token_keeps_the_stored_one(store: Store) -> None:
    await store.save_token(token("EAAG-keep-me"))
    [before] = await store.list_tokens()
    update = TokenUpdate(expires_at=None, status="needs_reauth", last_refreshed_at=None)

    assert await store.update_token(before.token_id, "EAAG-keep-me", update) is True

    [after] = await store.list_tokens()
    assert (after.access_token.get_secret_value(), after.status) == ("EAAG-keep-me", "needs_reauth")


async def test_delete_tokens_removes_one_account_or_all(store: Store) -> None:
    for account in ("101", "102", "103"):
        await store.save_token(token(account_id=account))
    await store.save_token(token(u_id=BOB, account_id="201"))

    assert await store.delete_tokens(ALICE, account_id="102") == 1
    assert [t.account_id for t in await store.list_tokens(u_id=ALICE)] == ["101", "103"]
    assert await store.delete_tokens(ALICE) == 2
    assert await store.list_tokens(u_id=ALICE) == []
    assert await store.delete_tokens(ALICE) == 0
    assert [t.account_id for t in await store.list_tokens()] == ["201"]


async def test_save_token_creates_the_users_row(store: Store, kit: StoreKit) -> None:
    await store.save_token(token(account_id="101"))
    await store.save_token(token(account_id="102"))  # the user exists by now

    users = await kit.sql(
        f"select cast(u_id as text) from users where cast(u_id as text) = '{ALICE}'"
    )
    assert users == [(str(ALICE),)]


async def test_tokens_read_from_the_store_are_redacted_everywhere(
    store: Store, kit: StoreKit
) -> None:
    secret = f"EAAG{uuid4().hex}"  # written behind the store's back: nobody registered it
    await kit.sql(f"insert into users (u_id) values ('{BOB}')")
    await kit.sql(
        "insert into user_tokens (token_id, u_id, platform, access_token, account_id)"
        f" values ('{uuid4()}', '{BOB}', 'instagram', '{secret}', 'b1')"
    )

    [read] = await store.list_tokens(u_id=BOB)

    assert read.access_token.get_secret_value() == secret
    assert secret not in redact(f"Graph said: bad token {secret}")


async def test_the_token_never_appears_in_a_store_error(store: Store) -> None:
    secret = f"EAAG{uuid4().hex}"
    # Skip validation so the database itself refuses the row (a check violation, whose
    # PostgreSQL DETAIL would list every column, the token included).
    refused = UserToken.model_construct(**{**dict(token(secret)), "token_kind": "bogus"})

    with pytest.raises(StoreError) as caught:
        await store.save_token(refused)

    assert "token_kind" in str(caught.value)
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert await store.list_tokens() == []


# --- sync logs ---


async def test_sync_logs_are_written(store: Store, kit: StoreKit) -> None:
    run_id = uuid4()
    started = datetime(2026, 11, 24, 6, tzinfo=UTC)
    await store.write_sync_logs(
        [
            SyncLog(
                run_id=run_id,
                u_id=ALICE,
                account_id="a1",
                started_at=started,
                finished_at=started + timedelta(seconds=3),
                status="partial",
                total_inserted=9,
                total_errors=1,
                errors=["profile_views: (#100) bad metric [code 100]"],
                token_refreshed=True,
            )
        ]
    )
    # several in one call: all written, in order
    await store.write_sync_logs(
        [
            SyncLog(
                run_id=run_id,
                u_id=None,
                account_id=None,
                started_at=started,
                finished_at=started,
                status="failed",
                total_inserted=0,
                total_errors=1,
                errors=["no token"],
            ),
            SyncLog(
                run_id=run_id,
                u_id=ALICE,
                account_id="a2",
                started_at=started,
                finished_at=started,
                status="ok",
                total_inserted=4,
                total_errors=0,
                errors=[],
            ),
        ]
    )
    await store.write_sync_logs([])  # nothing to write: no call

    rows = await kit.sql(
        "select cast(run_id as text), cast(u_id as text), account_id, status, total_inserted,"
        " total_errors, cast(errors as text), cast(token_refreshed as integer)"
        " from instagram_sync_logs order by id"
    )
    assert [(*r[:6], json.loads(r[6]), r[7]) for r in rows] == [
        (
            str(run_id),
            str(ALICE),
            "a1",
            "partial",
            9,
            1,
            ["profile_views: (#100) bad metric [code 100]"],
            1,
        ),
        (str(run_id), None, None, "failed", 0, 1, ["no token"], 0),
        (str(run_id), str(ALICE), "a2", "ok", 4, 0, [], 0),
    ]


# --- SQLite only ---


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
async def test_sqlite_file_is_created_0600_in_a_0700_dir(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "igsync.db"

    async with SQLiteStore(path) as store:
        await store.init_schema()

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


# --- PostgreSQL only ---


async def test_postgres_url_password_never_appears_in_connection_errors(
    postgres_url: str,
) -> None:
    password = "Pa55-word-nobody-should-see"
    parts = urlsplit(postgres_url)
    server = f"{parts.hostname}:{parts.port or 5432}"
    urls = [
        f"postgresql://igsync:{password}@127.0.0.1:{free_port()}/igsync",  # nothing listens
        f"postgresql://igsync:{password}@[::1/igsync",  # libpq echoes a malformed URI
        f"postgresql://igsync:{password}@127.0.0.1:notaport/igsync",
        f"postgresql://postgres:{password}@{server}/no_such_database",  # the server refuses
        f"postgres://postgres:{password.replace('-', '%2D')}@{server}/no_such_database",
    ]
    for url in urls:
        with pytest.raises(StoreError) as caught:
            async with PostgresStore(url):
                pass
        assert password not in str(caught.value), url
        assert password not in repr(caught.value), url
        assert str(caught.value).startswith("PostgreSQL cannot connect"), url
        # a setting to fix before any work (issue 11, finding 6): exit 2, with the fix
        assert caught.value.exit_code == 2, url
        assert "check the host, port, user, password and database" in str(caught.value) or (
            "wrong user name or password" in str(caught.value)
        ), url
    # libpq quotes a password it cannot parse back in its complaint ("unexpected spaces")
    for malformed in ("My Secret nobody-sees", "tab\tnobody-sees"):
        with pytest.raises(StoreError) as caught:
            async with PostgresStore(f"postgresql://u:{malformed}@127.0.0.1:{free_port()}/db"):
                pass
        assert "nobody-sees" not in str(caught.value), malformed


async def test_postgres_connections_never_prepare_statements(fresh_postgres_url: str) -> None:
    # Supabase's transaction pooler cannot hold server-side prepared statements; psycopg would
    # prepare a query after its 5th use unless prepare_threshold is None.
    async with PostgresStore(fresh_postgres_url, max_connections=1) as store:
        await store.init_schema()
        for day in range(8):
            await store.upsert_insights([row(day)])
            await store.read_insights(u_id=ALICE)
        async with store._pool.connection() as conn:  # type: ignore[union-attr]
            assert conn.prepare_threshold is None
            cursor = await conn.execute("select count(*) from pg_prepared_statements")
            assert await cursor.fetchone() == (0,)


IGSYNC_TABLES = (
    "users",
    "user_tokens",
    "instagram_insights",
    "instagram_sync_logs",
    "igsync_schema_migrations",
    "instagram_audience",
    "instagram_media",
    "instagram_media_insights",
    "instagram_daily",
    "instagram_audience_latest",
)


async def catalog_versions(url: str) -> dict[str, str]:
    """Each table's pg_class row version: any DDL on it (even a no-op ALTER) moves it."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "select relname, xmin::text from pg_class"
            " where relname = any(%s) and relnamespace = 'public'::regnamespace",
            [list(IGSYNC_TABLES)],
        )
        return dict(await cursor.fetchall())


async def test_postgres_store_creates_the_schema_on_first_open(fresh_postgres_url: str) -> None:
    # As the SQLite store does: `igsync --db postgresql://…/newdb fetch` needs no `db init`.
    async with PostgresStore(fresh_postgres_url) as store:
        assert await store.upsert_insights([row(0, 5)]) == 1
        await store.save_token(token("EAAG-first-open"))
        assert values(await store.read_insights()) == [("reach", DAY0, 5)]

    assert set(await catalog_versions(fresh_postgres_url)) == set(IGSYNC_TABLES)


async def test_postgres_store_runs_no_ddl_on_open_when_the_tables_exist(
    fresh_postgres_url: str,
) -> None:
    async with PostgresStore(fresh_postgres_url) as store:
        await store.upsert_insights([row(0, 1)])
    before = await catalog_versions(fresh_postgres_url)

    async with PostgresStore(fresh_postgres_url) as store:
        await store.upsert_insights([row(0, 2)])

    assert await catalog_versions(fresh_postgres_url) == before


async def test_postgres_moves_updated_at_on_every_token_update_whoever_writes(
    fresh_postgres_url: str,
) -> None:
    # The Supabase store's compare-and-swap relies on it (schema.py, igsync_touch_updated_at).
    async with PostgresStore(fresh_postgres_url) as store:
        await store.save_token(token("EAAG-touch-me"))
    async with await psycopg.AsyncConnection.connect(fresh_postgres_url, autocommit=True) as conn:
        read = "select updated_at from user_tokens"
        before = await (await conn.execute(read)).fetchone()
        await conn.execute("update user_tokens set access_token = 'EAAG-written-by-the-app'")
        after = await (await conn.execute(read)).fetchone()
    assert before is not None
    assert after is not None
    assert after[0] > before[0]


async def test_postgres_store_opens_for_a_role_that_may_only_read_and_write_rows(
    fresh_postgres_url: str,
) -> None:
    # Production cron: the schema was applied by its owner; igsync's role holds DML grants only,
    # so any DDL on open would fail here.
    async with PostgresStore(fresh_postgres_url) as store:
        await store.init_schema()
    with login_role(
        fresh_postgres_url,
        "grant select, insert, update, delete on all tables in schema public to {role}",
        "create policy cron_all on instagram_insights to {role} using (true)",
    ) as cron_url:
        async with PostgresStore(cron_url) as store:
            assert await store.upsert_insights([row(0, 3), row(1, 4)]) == 2
            assert len(await store.read_insights()) == 2


async def test_postgres_store_that_may_not_create_the_schema_says_how_to(
    fresh_postgres_url: str,
) -> None:
    with login_role(fresh_postgres_url) as role_url, pytest.raises(StoreError) as caught:
        async with PostgresStore(role_url):
            pass

    message = str(caught.value)
    assert message.startswith("PostgreSQL has no igsync tables and could not create them:")
    assert "[42501]" in message
    assert "`igsync db init`" in message
    assert "`igsync db schema --dialect postgres`" in message
    assert "\n" not in message
    password = urlsplit(role_url).password
    assert password
    assert password not in message
    assert await catalog_versions(fresh_postgres_url) == {}


async def test_postgres_stores_opening_a_new_database_together_all_succeed(
    fresh_postgres_url: str,
) -> None:
    # `sync-all --shard K/N` workers started side by side on a database nobody initialised.
    async def open_and_write(day: int) -> int:
        async with PostgresStore(fresh_postgres_url) as store:
            return await store.upsert_insights([row(day, day)])

    assert await asyncio.gather(*(open_and_write(day) for day in range(6))) == [1] * 6


# --- rows the user's app wrote wrongly (issue 11) ---


@pytest.mark.parametrize(
    "bad", [b for b in BAD_ROWS if not b.sqlite_only], ids=lambda bad: bad.name
)
async def test_a_bad_token_row_is_reported_alone_and_never_fails_the_read(
    store: Store, kit: StoreKit, bad: BadRow
) -> None:
    await _bad_row_is_reported_alone(store, kit, bad)


# Only SQLite's text columns can hold these (a u_id that is no UUID, a date that is no date);
# PostgreSQL's types refuse them on insert.
@pytest.mark.parametrize("bad", [b for b in BAD_ROWS if b.sqlite_only], ids=lambda b: b.name)
async def test_a_bad_token_row_only_sqlite_can_hold_is_reported_alone(
    tmp_path: Path, bad: BadRow
) -> None:
    kit = SQLiteKit(tmp_path / "data" / "igsync.db")
    async with kit.open() as store:
        await store.init_schema()
        await _bad_row_is_reported_alone(store, kit, bad)


async def _bad_row_is_reported_alone(store: Store, kit: StoreKit, bad: BadRow) -> None:
    good = token(account_id="1784001", expires_at=datetime(2027, 1, 20, tzinfo=UTC))
    await store.save_token(good)
    for statement in insert_sql(bad, u_id=str(ALICE), account_id="1784002"):
        await kit.sql(statement)

    listed = await store.list_tokens()
    paged = [row async for row in iter_tokens(store, page_size=1)]
    for rows in (listed, paged):
        assert [r.token_id for r in rows if isinstance(r, UserToken)] == [good.token_id]
        (row,) = [r for r in rows if isinstance(r, BadTokenRow)]
        assert bad.message in row.problem
        assert row.problem.startswith("user_tokens row ")
        assert "\n" not in row.problem
        assert not bad.secret or bad.secret not in row.problem
    # the token of a bad row is still a secret: it is masked wherever it shows up
    if len(bad.secret) >= 8:
        assert bad.secret not in redact(f"failed with {bad.secret}")
