"""Row-level security of the PostgreSQL schema, proven on a real PostgreSQL dressed as Supabase.

Each test gets a fresh database (tests/postgres_server.py) and gives it what Supabase has before
our migration runs: the roles `anon`, `authenticated`, `service_role` (BYPASSRLS), the `auth`
schema with Supabase's own `auth.uid()`, and Supabase's default grants (every privilege on new
tables in `public` to all three roles: RLS, not grants, is what must stop them). A request is
simulated the way PostgREST makes one: inside a transaction, `set local role <role>` and the JWT
claims in `request.jwt.claims`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from psycopg.errors import InsufficientPrivilege

from igsync.store.postgres import PostgresStore
from igsync.store.schema import LATEST, MIGRATIONS, Migration, migration_sql, schema_sql

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "supabase" / "migrations"

TABLES = (
    "user_tokens",
    "instagram_insights",
    "instagram_sync_logs",
    "instagram_audience",
    "instagram_media",
    "instagram_media_insights",
)
#: the modelled views: security_invoker, so the tables' policies decide what they show
VIEWS = ("instagram_daily", "instagram_audience_latest")
A = UUID("00000000-0000-4000-8000-00000000000a")
B = UUID("00000000-0000-4000-8000-00000000000b")

# Roles are cluster-wide and every test database shares the cluster: create them only once.
# `duplicate_object` covers two sessions racing past `if not exists` at the same moment.
SUPABASE_ROLES = """\
do $$
begin
    if not exists (select from pg_roles where rolname = 'anon') then
        create role anon nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'authenticated') then
        create role authenticated nologin noinherit;
    end if;
    if not exists (select from pg_roles where rolname = 'service_role') then
        create role service_role nologin noinherit bypassrls;
    end if;
exception when duplicate_object then null;
end
$$;
"""

# What a Supabase database has in it before any migration (per database).
SUPABASE_DATABASE = """\
create schema auth;
-- Supabase's own definition (supabase/auth, migration 20211202183645_update_auth_uid).
create function auth.uid() returns uuid language sql stable as $$
  select
  nullif(
    coalesce(
      current_setting('request.jwt.claim.sub', true),
      (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')
    ),
    ''
  )::uuid
$$;
grant usage on schema public, auth to anon, authenticated, service_role;
grant execute on function auth.uid() to anon, authenticated, service_role;
alter default privileges in schema public
    grant all on tables to anon, authenticated, service_role;
alter default privileges in schema public
    grant all on sequences to anon, authenticated, service_role;
"""

SEED = f"""\
insert into users (u_id) values ('{A}'), ('{B}');
insert into user_tokens (u_id, platform, access_token, account_id) values
    ('{A}', 'instagram', 'token-a', 'acct-a'),
    ('{B}', 'instagram', 'token-b', 'acct-b');
insert into instagram_insights
    (u_id, account_id, metric, metric_type, period, end_time, local_date, value)
values
    ('{A}', 'acct-a', 'reach', 'time_series', 'day', '2026-11-20T08:00:00Z', '2026-11-19', 10),
    ('{A}', 'acct-a', 'reach', 'time_series', 'day', '2026-11-21T08:00:00Z', '2026-11-20', 11),
    ('{B}', 'acct-b', 'reach', 'time_series', 'day', '2026-11-20T08:00:00Z', '2026-11-19', 20);
insert into instagram_sync_logs (run_id, u_id, account_id, started_at, status) values
    (gen_random_uuid(), '{A}', 'acct-a', now(), 'ok'),
    (gen_random_uuid(), '{B}', 'acct-b', now(), 'ok'),
    (gen_random_uuid(), null, null, now(), 'failed');
insert into instagram_audience (u_id, account_id, metric, timeframe, breakdown,
    dimension_values, captured_on, value)
values
    ('{A}', 'acct-a', 'follower_demographics', 'this_month', 'age', '18-24', '2026-11-19', 5),
    ('{A}', 'acct-a', 'follower_demographics', 'this_month', 'age', '18-24', '2026-11-20', 6),
    ('{B}', 'acct-b', 'follower_demographics', 'this_month', 'age', '18-24', '2026-11-20', 7);
insert into instagram_media (u_id, account_id, media_id, media_product_type, like_count) values
    ('{A}', 'acct-a', 'media-a', 'FEED', 3),
    ('{B}', 'acct-b', 'media-b', 'STORY', null);
insert into instagram_media_insights (u_id, account_id, media_id, metric, captured_on, value)
values
    ('{A}', 'acct-a', 'media-a', 'reach', '2026-11-19', 30),
    ('{A}', 'acct-a', 'media-a', 'reach', '2026-11-20', 31),
    ('{B}', 'acct-b', 'media-b', 'reach', '2026-11-20', 40);
"""
# Rows per table and owner in SEED (the null-u_id log row belongs to nobody).
SEEDED = {
    "user_tokens": {A: 1, B: 1},
    "instagram_insights": {A: 2, B: 1},
    "instagram_sync_logs": {A: 1, B: 1, None: 1},
    "instagram_audience": {A: 2, B: 1},
    "instagram_media": {A: 1, B: 1},
    "instagram_media_insights": {A: 2, B: 1},
    # views: A's two reach days; each user's newest audience snapshot
    "instagram_daily": {A: 2, B: 1},
    "instagram_audience_latest": {A: 1, B: 1},
}

# One insert per table, on behalf of user A (its own rows: still refused).
INSERTS = {
    "user_tokens": (
        f"insert into user_tokens (u_id, platform, access_token, account_id)"
        f" values ('{A}', 'facebook', 'token-a2', 'acct-a2')"
    ),
    "instagram_insights": (
        f"insert into instagram_insights (u_id, account_id, metric, metric_type, period,"
        f" end_time, value) values ('{A}', 'acct-a', 'reach', 'time_series', 'day',"
        f" '2026-11-22T08:00:00Z', 12)"
    ),
    "instagram_sync_logs": (
        f"insert into instagram_sync_logs (run_id, u_id, account_id, started_at, status)"
        f" values (gen_random_uuid(), '{A}', 'acct-a', now(), 'ok')"
    ),
    "instagram_audience": (
        "insert into instagram_audience (u_id, account_id, metric, timeframe, breakdown,"
        f" dimension_values, captured_on, value) values ('{A}', 'acct-a',"
        " 'follower_demographics', 'this_month', 'age', '25-34', '2026-11-20', 8)"
    ),
    "instagram_media": (
        f"insert into instagram_media (u_id, account_id, media_id) values ('{A}', 'acct-a', 'm2')"
    ),
    "instagram_media_insights": (
        "insert into instagram_media_insights (u_id, account_id, media_id, metric, captured_on,"
        f" value) values ('{A}', 'acct-a', 'media-a', 'reach', '2026-11-21', 32)"
    ),
}
# A harmless change per table, and the column it touches.
UPDATES = {
    "user_tokens": "update user_tokens set status = 'changed'",
    "instagram_insights": "update instagram_insights set period = 'changed'",
    "instagram_sync_logs": "update instagram_sync_logs set account_id = 'changed'",
    "instagram_audience": "update instagram_audience set value = 0",
    "instagram_media": "update instagram_media set permalink = 'changed'",
    "instagram_media_insights": "update instagram_media_insights set value = 0",
}

POLICIES = """\
select tablename, policyname, permissive, roles, cmd, qual, with_check
from pg_policies where schemaname = 'public' order by tablename, policyname
"""
# Everyone may read the schema version (a cron role checks it on open); nobody but its owner
# (or service_role) may write it.
VERSION_POLICY = (
    "igsync_schema_migrations",
    "igsync_read_versions",
    "PERMISSIVE",
    ["public"],
    "SELECT",
    "true",
    None,
)
RLS_FLAGS = """\
select relname, relrowsecurity, relforcerowsecurity from pg_class
where relnamespace = 'public'::regnamespace and relname = any(%s) order by relname
"""
# RLS on (not forced) for every igsync table; `users` is the app's.
RLS_ON = sorted([*((table, True, False) for table in TABLES), ("users", False, False)])


def connect(url: str) -> psycopg.Connection[tuple[Any, ...]]:
    return psycopg.connect(url, autocommit=True)


def apply_schema(url: str) -> None:
    with connect(url) as conn, conn.transaction():  # as `igsync db init` does: one transaction
        conn.execute(schema_sql("postgres"))


def make_supabase_like(url: str) -> None:
    with connect(url) as conn:
        conn.execute(SUPABASE_ROLES)
        conn.execute(SUPABASE_DATABASE)


@pytest.fixture
def supabase_url(fresh_postgres_url: str) -> str:
    """A fresh database dressed as Supabase, with our schema applied and two users' rows."""
    make_supabase_like(fresh_postgres_url)
    apply_schema(fresh_postgres_url)
    with connect(fresh_postgres_url) as conn:
        conn.execute(SEED)
    return fresh_postgres_url


@contextmanager
def request_as(
    conn: psycopg.Connection[tuple[Any, ...]], role: str, sub: UUID | None = None
) -> Iterator[psycopg.Connection[tuple[Any, ...]]]:
    """One PostgREST-style request: a transaction with the role and JWT claims set locally."""
    claims: dict[str, str] = {"role": role}
    if sub is not None:
        claims["sub"] = str(sub)
    with conn.transaction():
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        conn.execute("select set_config('request.jwt.claims', %s, true)", [json.dumps(claims)])
        yield conn


def owners(conn: psycopg.Connection[tuple[Any, ...]], table: str) -> dict[UUID | None, int]:
    """Visible rows of `table` per u_id, for whoever the connection currently is."""
    query = sql.SQL("select u_id, count(*) from {} group by u_id").format(sql.Identifier(table))
    return {u_id: n for u_id, n in conn.execute(query).fetchall()}


def snapshot(conn: psycopg.Connection[tuple[Any, ...]]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the igsync tables, as the (superuser) owner sees them."""
    return {
        table: conn.execute(
            sql.SQL("select * from {} order by 1").format(sql.Identifier(table))
        ).fetchall()
        for table in ("users", *TABLES)
    }


# --- the migration file ---


@pytest.mark.parametrize("migration", MIGRATIONS, ids=lambda m: f"migration-{m.version}")
def test_each_migration_ships_as_its_supabase_migration_file(migration: Migration) -> None:
    path = MIGRATIONS_DIR / migration.supabase_file
    regenerate = (
        f"uv run igsync db schema --migration {migration.version}"
        f" > supabase/migrations/{migration.supabase_file}"
    )
    assert path.exists(), f"{path} is missing: create it with `{regenerate}`"
    assert path.read_bytes() == migration_sql(migration.version).encode(), (
        f"{path.name} has drifted from migration {migration.version}: a published migration"
        f" never changes; if this one is unpublished, regenerate it with `{regenerate}`"
    )


def test_supabase_migrations_folder_holds_igsyncs_files_in_order() -> None:
    # `supabase db push` applies the files in name order: it must be the migrations' order.
    names = sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
    assert names == [m.supabase_file for m in MIGRATIONS]


# --- the policies, as Supabase's roles see them ---


def test_user_reads_only_own_rows(supabase_url: str) -> None:
    with connect(supabase_url) as conn:
        for user in (A, B):
            with request_as(conn, "authenticated", sub=user):
                for table in TABLES:
                    assert owners(conn, table) == {user: SEEDED[table][user]}, table
                    # Asking for the other user's rows by name does not help either.
                    other = B if user == A else A
                    query = sql.SQL("select count(*) from {} where u_id = %s").format(
                        sql.Identifier(table)
                    )
                    assert conn.execute(query, [other]).fetchone() == (0,), table


@pytest.mark.parametrize("table", TABLES)
def test_user_cannot_insert_even_own_rows(supabase_url: str, table: str) -> None:
    with connect(supabase_url) as conn:
        before = snapshot(conn)
        with pytest.raises(InsufficientPrivilege) as caught, request_as(conn, "authenticated", A):
            conn.execute(INSERTS[table])
        assert caught.value.sqlstate == "42501"
        assert f'new row violates row-level security policy for table "{table}"' in str(
            caught.value
        )
        assert snapshot(conn) == before


@pytest.mark.parametrize("table", TABLES)
def test_user_update_and_delete_touch_no_row(supabase_url: str, table: str) -> None:
    """No UPDATE/DELETE policy: PostgreSQL raises nothing, the rows are just not there to touch."""
    with connect(supabase_url) as conn:
        before = snapshot(conn)
        with request_as(conn, "authenticated", A):
            target = sql.Identifier(table)
            own = conn.execute(UPDATES[table] + " where u_id = %s", [A])
            assert own.rowcount == 0
            everyone = conn.execute(UPDATES[table])
            assert everyone.rowcount == 0
            assert conn.execute(sql.SQL("delete from {}").format(target)).rowcount == 0
            # `returning u_id`: `returning *` would name user_tokens.access_token, which no
            # signed-in user may read (migration 5)
            deleted = conn.execute(
                sql.SQL("delete from {} where u_id = %s returning u_id").format(target), [A]
            )
            assert deleted.fetchall() == []
            # ... while the same transaction still reads its own rows.
            assert owners(conn, table) == {A: SEEDED[table][A]}
        assert snapshot(conn) == before


def test_user_cannot_upsert(supabase_url: str) -> None:
    """PostgREST's upsert (`on conflict do update`) is an INSERT first: refused outright."""
    with connect(supabase_url) as conn:
        before = snapshot(conn)
        with pytest.raises(InsufficientPrivilege), request_as(conn, "authenticated", A):
            conn.execute(
                "insert into instagram_insights (u_id, account_id, metric, metric_type, period,"
                " end_time, value) values (%s, 'acct-a', 'reach', 'time_series', 'day',"
                " '2026-11-20T08:00:00Z', 99)"
                " on conflict (u_id, account_id, metric, end_time) do update set value = 99",
                [A],
            )
        assert snapshot(conn) == before


def test_anon_and_jwt_without_sub_see_nothing(supabase_url: str) -> None:
    with connect(supabase_url) as conn:
        with request_as(conn, "anon"):
            for table in TABLES:
                assert owners(conn, table) == {}, table
        with request_as(conn, "authenticated"):  # no `sub`: auth.uid() is null
            for table in TABLES:
                assert owners(conn, table) == {}, table
        with pytest.raises(InsufficientPrivilege), request_as(conn, "anon"):
            conn.execute(INSERTS["instagram_insights"])


def test_service_role_reads_and_writes_everything(supabase_url: str) -> None:
    with connect(supabase_url) as conn:
        with request_as(conn, "service_role"):
            for table in TABLES:
                assert owners(conn, table) == SEEDED[table], table
            for table in TABLES:
                assert conn.execute(INSERTS[table]).rowcount == 1, table
                assert conn.execute(UPDATES[table] + " where u_id = %s", [B]).rowcount == 1
            assert conn.execute("delete from instagram_insights where u_id = %s", [B]).rowcount
            assert (
                conn.execute(
                    "insert into instagram_insights (u_id, account_id, metric, metric_type,"
                    " period, end_time, value) values (%s, 'acct-b', 'reach', 'time_series',"
                    " 'day', '2026-11-20T08:00:00Z', 21) on conflict"
                    " (u_id, account_id, metric, end_time) do update set value = excluded.value",
                    [B],
                ).rowcount
                == 1
            )
        assert owners(conn, "user_tokens") == {A: 2, B: 1}
        assert owners(conn, "instagram_insights") == {A: 3, B: 1}
        assert owners(conn, "instagram_sync_logs") == {A: 2, B: 1, None: 1}


def test_everyone_reads_the_schema_version_and_only_its_owner_changes_it(
    supabase_url: str,
) -> None:
    # The Supabase store checks the version over PostgREST on open, whatever its key.
    with connect(supabase_url) as conn:
        recorded = conn.execute("select * from igsync_schema_migrations").fetchall()
        for role in ("anon", "authenticated", "service_role"):
            with request_as(conn, role, sub=A):
                latest = conn.execute("select max(version) from igsync_schema_migrations")
                assert latest.fetchone() == (LATEST,), role
        for role in ("anon", "authenticated"):
            with pytest.raises(InsufficientPrivilege), request_as(conn, role, sub=A):
                conn.execute("insert into igsync_schema_migrations values (99, 'x', now())")
            with request_as(conn, role, sub=A):
                assert conn.execute("update igsync_schema_migrations set name = 'x'").rowcount == 0
                assert conn.execute("delete from igsync_schema_migrations").rowcount == 0
        assert conn.execute("select * from igsync_schema_migrations").fetchall() == recorded


def test_owner_is_not_subject_to_rls(supabase_url: str) -> None:
    """The PostgreSQL store connects as the tables' owner: without FORCE, RLS lets it through.

    The test server's `postgres` is a superuser (which skips RLS anyway), so the tables are
    handed to a plain, non-BYPASSRLS role for this test.
    """
    with connect(supabase_url) as conn:
        conn.execute(
            "do $$ begin create role igsync_test_owner nologin noinherit;"
            " exception when duplicate_object then null; end $$"
        )
        for table in TABLES:
            conn.execute(
                sql.SQL("alter table {} owner to igsync_test_owner").format(sql.Identifier(table))
            )
        with conn.transaction():
            conn.execute("set local role igsync_test_owner")
            conn.execute("select set_config('request.jwt.claims', '', true)")
            for table in TABLES:
                assert owners(conn, table) == SEEDED[table], table
                assert conn.execute(INSERTS[table]).rowcount == 1, table
        flags = conn.execute(RLS_FLAGS, [list(TABLES)]).fetchall()
        assert flags == [(table, True, False) for table in sorted(TABLES)]


# --- the modelled views ---


def test_views_show_each_user_only_their_own_rows(supabase_url: str) -> None:
    with connect(supabase_url) as conn:
        for user in (A, B):
            with request_as(conn, "authenticated", sub=user):
                for view in VIEWS:
                    assert owners(conn, view) == {user: SEEDED[view][user]}, view
        for role, sub in (("anon", None), ("authenticated", None)):
            with request_as(conn, role, sub):
                for view in VIEWS:
                    assert owners(conn, view) == {}, (role, view)
        with request_as(conn, "service_role"):
            for view in VIEWS:
                assert owners(conn, view) == SEEDED[view], view


def test_views_run_with_the_readers_rights(supabase_url: str) -> None:
    with connect(supabase_url) as conn:
        options = conn.execute(
            "select relname, reloptions from pg_class"
            " where relnamespace = 'public'::regnamespace and relkind = 'v' order by relname",
        ).fetchall()
    assert options == [(view, ["security_invoker=true"]) for view in sorted(VIEWS)]


def test_a_view_without_security_invoker_would_show_every_users_rows(supabase_url: str) -> None:
    """Why the views need security_invoker: by default a view reads with its owner's rights."""
    with connect(supabase_url) as conn:
        conn.execute("create view definer_rights as select u_id from instagram_media")
        with request_as(conn, "authenticated", sub=A):
            assert owners(conn, "definer_rights") == {A: 1, B: 1}
            assert owners(conn, "instagram_media") == {A: 1}


# --- the DDL itself: idempotent, and harmless on plain PostgreSQL ---


@pytest.mark.anyio
async def test_schema_twice_changes_nothing(supabase_url: str) -> None:
    with connect(supabase_url) as conn:
        policies = conn.execute(POLICIES).fetchall()
        flags = conn.execute(RLS_FLAGS, [["users", *TABLES]]).fetchall()
        rows = snapshot(conn)
    own_rows = [p for p in policies if p[0] != "igsync_schema_migrations"]
    assert [(t, name, perm, roles, cmd) for t, name, perm, roles, cmd, _, _ in own_rows] == [
        (table, "igsync_read_own", "PERMISSIVE", ["authenticated"], "SELECT")
        for table in sorted(TABLES)
    ]
    assert all("auth.uid()" in qual and check is None for *_, qual, check in own_rows)
    assert [p for p in policies if p[0] == "igsync_schema_migrations"] == [VERSION_POLICY]
    assert flags == RLS_ON

    apply_schema(supabase_url)  # the migration run again by hand ...
    async with PostgresStore(supabase_url) as store:  # ... and `igsync db init`
        await store.init_schema()

    with connect(supabase_url) as conn:
        assert conn.execute(POLICIES).fetchall() == policies
        assert conn.execute(RLS_FLAGS, [["users", *TABLES]]).fetchall() == flags
        assert snapshot(conn) == rows
        with request_as(conn, "authenticated", A):  # and the policies still work
            assert {table: owners(conn, table) for table in TABLES} == {
                table: {A: SEEDED[table][A]} for table in TABLES
            }


def test_schema_on_plain_postgres_enables_rls_without_policies(fresh_postgres_url: str) -> None:
    # The Supabase roles may well exist in this cluster (other tests made them): what is missing
    # is Supabase's `auth.uid()`, and without it no policy may be created.
    with connect(fresh_postgres_url) as conn:
        conn.execute(SUPABASE_ROLES)
        assert conn.execute("select to_regnamespace('auth')").fetchone() == (None,)
    apply_schema(fresh_postgres_url)
    apply_schema(fresh_postgres_url)
    with connect(fresh_postgres_url) as conn:
        # Only the version record's read policy, which needs no Supabase role.
        assert conn.execute(POLICIES).fetchall() == [VERSION_POLICY]
        assert conn.execute(RLS_FLAGS, [["users", *TABLES]]).fetchall() == RLS_ON
        conn.execute(SEED)  # the owner (here the superuser) still writes and reads everything
        for table in TABLES:
            assert owners(conn, table) == SEEDED[table], table


# --- the token itself: no signed-in reader sees it (migration 5, issue 11 finding 10) ---

#: every column of user_tokens but the token
TOKEN_ROW_COLUMNS = (
    "token_id",
    "u_id",
    "platform",
    "account_id",
    "expires_at",
    "token_kind",
    "status",
    "last_refreshed_at",
    "created_at",
    "updated_at",
)
COLUMN_GRANTS = """\
select grantee, column_name from information_schema.column_privileges
where table_schema = 'public' and table_name = 'user_tokens' and privilege_type = 'SELECT'
    and grantee = any(%s)
order by grantee, column_name
"""


def test_a_signed_in_user_reads_their_token_rows_but_not_the_token(supabase_url: str) -> None:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in ("u_id", *TOKEN_ROW_COLUMNS))
    with connect(supabase_url) as conn:
        for user, account in ((A, "acct-a"), (B, "acct-b")):
            with request_as(conn, "authenticated", sub=user):
                rows = conn.execute(
                    sql.SQL("select {} from user_tokens").format(columns)
                ).fetchall()
                assert [(r[0], r[4], r[7]) for r in rows] == [(user, account, "ok")]
            for query in (
                "select access_token from user_tokens",
                "select * from user_tokens",  # PostgREST's `select=*`
                "select count(*) from user_tokens where access_token like 'token%%'",
                "select u_id from user_tokens order by md5(access_token)",
                "delete from user_tokens returning access_token",
            ):
                with (
                    pytest.raises(InsufficientPrivilege) as caught,
                    request_as(conn, "authenticated", sub=user),
                ):
                    conn.execute(query)
                assert caught.value.sqlstate == "42501"
                assert "permission denied for table user_tokens" in str(caught.value)
                assert "token-a" not in str(caught.value)
        with pytest.raises(InsufficientPrivilege), request_as(conn, "anon"):
            conn.execute("select access_token from user_tokens")
        with request_as(conn, "anon"):  # the other columns: no error, and (no policy) no row
            assert conn.execute("select token_id from user_tokens").fetchall() == []


def test_only_the_token_column_is_withheld_from_the_api_roles(supabase_url: str) -> None:
    with connect(supabase_url) as conn:
        grants = conn.execute(COLUMN_GRANTS, [["anon", "authenticated"]]).fetchall()
        service = conn.execute(COLUMN_GRANTS, [["service_role"]]).fetchall()
        table_wide = conn.execute(
            "select grantee from information_schema.role_table_grants"
            " where table_name = 'user_tokens' and privilege_type = 'SELECT'"
            " and grantee = any(%s) order by grantee",
            [["anon", "authenticated", "service_role"]],
        ).fetchall()
    assert grants == [
        (role, column) for role in ("anon", "authenticated") for column in sorted(TOKEN_ROW_COLUMNS)
    ]
    assert service == [("service_role", c) for c in sorted(("access_token", *TOKEN_ROW_COLUMNS))]
    assert table_wide == [("service_role",)]


def test_the_service_role_still_reads_and_swaps_every_token(supabase_url: str) -> None:
    with connect(supabase_url) as conn:
        with request_as(conn, "service_role"):
            tokens = conn.execute("select u_id, access_token from user_tokens order by u_id")
            assert tokens.fetchall() == [(A, "token-a"), (B, "token-b")]
            swapped = conn.execute(
                "update user_tokens set access_token = 'token-b2'"
                " where u_id = %s and access_token = 'token-b' returning access_token",
                [B],
            )
            assert swapped.fetchall() == [("token-b2",)]
        assert conn.execute(
            "select access_token from user_tokens where u_id = %s", [B]
        ).fetchone() == ("token-b2",)


@pytest.mark.anyio
async def test_igsync_connected_as_the_tables_owner_still_reads_and_swaps_tokens(
    supabase_url: str,
) -> None:
    """The PostgreSQL store connects as the owner (not a superuser here): column privileges
    granted to the API roles change nothing for it."""
    from igsync.models import TokenUpdate
    from postgres_server import login_role

    with login_role(supabase_url, "alter table user_tokens owner to {role}") as owner_url:
        async with PostgresStore(owner_url) as store:
            # SEED's account ids are not Meta's (digits), so the rows read as BadTokenRows:
            # still with the token, which is what this is about
            rows = await store.list_tokens()
            assert sorted(t.access_token.get_secret_value() for t in rows if t.access_token) == [
                "token-a",
                "token-b",
            ]
            [a] = [t for t in rows if t.u_id == str(A)]
            update = TokenUpdate(expires_at=None, status="ok", last_refreshed_at=None)
            assert await store.update_token(UUID(str(a.token_id)), "token-a", update)
