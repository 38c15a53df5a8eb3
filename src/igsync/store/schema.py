"""The schema of DESIGN.md §6 as numbered migrations (PostgreSQL the reference, SQLite its mirror).

Each migration is applied once, in order, in a transaction of its own, and recorded as a row of
`igsync_schema_migrations` (the schema-version record). No migration drops or rewrites a stored
value: they add tables, columns and indexes, and fill new columns from existing ones.

Migration 3 (the stream tables and the modelled views) lives in schema_streams.py; the
daily view's column per account metric (issue 13) in schema_daily.py.

Migration 1 is the schema igsync created before it had migrations, unchanged: a database made by
that igsync holds its tables and no version record, and counts as version 1. A published
migration is never edited (tests pin its text); a change to the schema is a new migration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from igsync.store.schema_daily import POSTGRES_DAILY, SQLITE_DAILY
from igsync.store.schema_streams import POSTGRES_3, SQLITE_3

Dialect = Literal["postgres", "sqlite"]

#: the schema-version record: one row (version, name, applied_at) per applied migration
VERSION_TABLE = "igsync_schema_migrations"
#: the tables of migration 1: all of them and no version record is a database at version 1
V1_TABLES = ("users", "user_tokens", "instagram_insights", "instagram_sync_logs")

# Migration 1 exactly as igsync shipped it before migrations (and as
# supabase/migrations/20261125000000_igsync_schema.sql still holds it).
_POSTGRES_1 = """\
-- igsync schema (PostgreSQL / Supabase). Safe to run more than once.
create extension if not exists pgcrypto;

create table if not exists users (
    u_id uuid primary key,
    created_at timestamptz not null default now()
);

create table if not exists user_tokens (
    token_id uuid primary key default gen_random_uuid(),
    u_id uuid not null references users (u_id) on delete cascade,
    platform text not null check (platform in ('instagram', 'youtube', 'tiktok', 'facebook')),
    access_token text not null,
    account_id text,
    expires_at timestamptz,
    token_kind text not null default 'facebook_login'
        check (token_kind in ('facebook_login', 'instagram_login')),
    status text not null default 'ok',
    last_refreshed_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (u_id, platform, account_id)
);

create table if not exists instagram_insights (
    id bigint generated always as identity primary key,
    u_id uuid not null,
    account_id text not null,
    metric text not null,
    metric_type text not null check (metric_type in ('time_series', 'total_value')),
    period text not null,
    end_time timestamptz not null,
    value bigint,
    value_json jsonb,
    fetched_at timestamptz not null default now(),
    unique (u_id, account_id, metric, end_time)
);

create table if not exists instagram_sync_logs (
    id bigint generated always as identity primary key,
    run_id uuid not null,
    u_id uuid,
    account_id text,
    started_at timestamptz not null,
    finished_at timestamptz,
    status text not null check (status in ('ok', 'partial', 'failed')),
    total_inserted integer not null default 0,
    total_errors integer not null default 0,
    errors jsonb not null default '[]'::jsonb,
    token_refreshed boolean not null default false
);

-- Every change to a token row moves its updated_at, whoever writes it (the app after a new
-- login, too). The Supabase store's compare-and-swap filters on updated_at rather than on the
-- old token, because PostgREST filters travel in the URL and URLs land in access logs.
create or replace function igsync_touch_updated_at() returns trigger
language plpgsql as $$
begin
    new.updated_at := clock_timestamp();
    return new;
end
$$;
drop trigger if exists igsync_touch_updated_at on user_tokens;
create trigger igsync_touch_updated_at before update on user_tokens
    for each row execute function igsync_touch_updated_at();

-- Row-level security (DESIGN.md section 6): a signed-in Supabase user may read only their own
-- rows; every write comes from the cron, as `service_role` (BYPASSRLS) or as the tables' owner
-- (igsync's PostgreSQL store, `igsync db init`). RLS does not apply to the owner unless FORCE is
-- set, and it is not set on purpose. `users` belongs to the app: its RLS is the app's business.
-- Enabling RLS is harmless on plain PostgreSQL (roles without a policy see nothing).
alter table user_tokens enable row level security;
alter table instagram_insights enable row level security;
alter table instagram_sync_logs enable row level security;

-- The policies need Supabase's `auth.uid()` (the JWT's `sub`) and role `authenticated`; plain
-- PostgreSQL has neither, so they are created only where both exist. Drop + create makes a
-- second run replace them rather than fail. `authenticated` gets a SELECT policy and nothing
-- else: with no INSERT/UPDATE/DELETE policy, RLS refuses its writes even though Supabase grants
-- it those privileges. `anon` has no policy and sees no row. `(select auth.uid())` is evaluated
-- once per query instead of once per row (Supabase's advice); the result is the same.
do $$
begin
    if to_regprocedure('auth.uid()') is not null
        and exists (select from pg_catalog.pg_roles where rolname = 'authenticated')
    then
        drop policy if exists igsync_read_own on user_tokens;
        create policy igsync_read_own on user_tokens
            for select to authenticated using (u_id = (select auth.uid()));
        drop policy if exists igsync_read_own on instagram_insights;
        create policy igsync_read_own on instagram_insights
            for select to authenticated using (u_id = (select auth.uid()));
        drop policy if exists igsync_read_own on instagram_sync_logs;
        create policy igsync_read_own on instagram_sync_logs
            for select to authenticated using (u_id = (select auth.uid()));
    end if;
end
$$;
"""

# Row-level security has no SQLite counterpart: SQLite has no roles or policies, and whoever can
# open the file reads and writes every row. Nothing here mirrors the PostgreSQL RLS section,
# nor its updated_at trigger: the SQLite store's compare-and-swap compares the token itself,
# which never leaves the process.
# Timestamps are ISO-8601 text in UTC ("2026-11-20T08:00:00+00:00"): one instant, one string,
# so the unique key holds. uuid/jsonb/boolean become TEXT/TEXT/INTEGER.
_NOW = "(strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))"

_SQLITE_1 = f"""\
-- igsync schema (SQLite mirror of the PostgreSQL reference). Safe to run more than once.
create table if not exists users (
    u_id text primary key,
    created_at text not null default {_NOW}
);

create table if not exists user_tokens (
    token_id text primary key,
    u_id text not null references users (u_id) on delete cascade,
    platform text not null check (platform in ('instagram', 'youtube', 'tiktok', 'facebook')),
    access_token text not null,
    account_id text,
    expires_at text,
    token_kind text not null default 'facebook_login'
        check (token_kind in ('facebook_login', 'instagram_login')),
    status text not null default 'ok',
    last_refreshed_at text,
    created_at text not null default {_NOW},
    updated_at text not null default {_NOW},
    unique (u_id, platform, account_id)
);

create table if not exists instagram_insights (
    id integer primary key autoincrement,
    u_id text not null,
    account_id text not null,
    metric text not null,
    metric_type text not null check (metric_type in ('time_series', 'total_value')),
    period text not null,
    end_time text not null,
    value integer,
    value_json text,
    fetched_at text not null default {_NOW},
    unique (u_id, account_id, metric, end_time)
);

create table if not exists instagram_sync_logs (
    id integer primary key autoincrement,
    run_id text not null,
    u_id text,
    account_id text,
    started_at text not null,
    finished_at text,
    status text not null check (status in ('ok', 'partial', 'failed')),
    total_inserted integer not null default 0,
    total_errors integer not null default 0,
    errors text not null default '[]',
    token_refreshed integer not null default 0
);
"""

# Daily rows carry the account-local date they describe (DESIGN.md §6), so daily reports need
# no time-zone arithmetic. Stores write it (InsightRow.local_date); rows already stored get it by
# the rule of igsync.local_day.day_label: an end_time at or before 10:00 UTC ends the day before
# its UTC date, a later one its UTC date. Only rows still without it are filled, so running this
# again rewrites nothing.
_POSTGRES_2 = """\
alter table instagram_insights add column if not exists local_date date;
update instagram_insights
set local_date = case
    when (end_time at time zone 'UTC')::time <= time '10:00'
        then (end_time at time zone 'UTC')::date - 1
    else (end_time at time zone 'UTC')::date
end
where period = 'day' and local_date is null;
create index if not exists instagram_insights_local_date_idx
    on instagram_insights (u_id, account_id, local_date);
"""

# SQLite has no `add column if not exists`: this runs once, inside the store's migration
# transaction. strftime reads igsync's ISO text (any offset) as UTC, to the millisecond; Meta's
# end_times are whole seconds.
_SQLITE_2 = """\
alter table instagram_insights add column local_date text;
update instagram_insights
set local_date = case
    when strftime('%H:%M:%f', end_time) <= '10:00:00.000' then date(end_time, '-1 day')
    else date(end_time)
end
where period = 'day' and local_date is null;
create index if not exists instagram_insights_local_date_idx
    on instagram_insights (u_id, account_id, local_date);
"""

# Every role may read the version record: a cron role holding row grants only checks it on open.
# Supabase grants anon and authenticated every privilege on new tables, and PostgREST serves
# them: RLS with a read-only policy keeps the record theirs to read, never to change. The
# policy is created only when missing, so applying this again takes no lock beyond the table's.
_POSTGRES_VERSION_TABLE = """\
create table if not exists igsync_schema_migrations (
    version integer primary key,
    name text not null,
    applied_at timestamptz not null default now()
);
grant select on igsync_schema_migrations to public;
alter table igsync_schema_migrations enable row level security;
do $$
begin
    if not exists (
        select from pg_catalog.pg_policy
        where polrelid = 'igsync_schema_migrations'::regclass
            and polname = 'igsync_read_versions'
    ) then
        create policy igsync_read_versions on igsync_schema_migrations
            for select using (true);
    end if;
end
$$;
"""

_SQLITE_VERSION_TABLE = f"""\
create table if not exists igsync_schema_migrations (
    version integer primary key,
    name text not null,
    applied_at text not null default {_NOW}
);
"""


@dataclass(frozen=True)
class Migration:
    """One numbered step of the schema, in both dialects."""

    version: int
    #: a few words, stored in the version record (no quote characters)
    name: str
    #: PostgreSQL DDL, safe to run more than once (the printed schema repeats it on re-runs)
    postgres: str
    #: the SQLite mirror; run once, by the SQLite store, in one transaction
    sqlite: str
    #: its file under supabase/migrations/ (`supabase db push` applies them in name order)
    supabase_file: str


# Which streams each run of an account gathered (issue 10). Rows from before ran the account
# stream alone, so that is what the default says of them.
_POSTGRES_4 = """\
alter table instagram_sync_logs
    add column if not exists streams jsonb not null default '["account"]'::jsonb;
"""

_SQLITE_4 = """\
alter table instagram_sync_logs add column streams text not null default '["account"]';
"""

# Supabase serves `user_tokens` to signed-in users (`authenticated`) through its API, and the
# read policy of migration 1 shows them their own rows, access_token included (issue 11,
# finding 10). A policy cannot hide a column; privileges can (Supabase's "Column Level
# Security" guide): the table-wide SELECT that Supabase's default privileges grant `anon` and
# `authenticated` is revoked and SELECT granted again on every other column, so their API
# reads every column of their own rows but access_token, and `select=*` is refused (the app
# names its columns). A column added to user_tokens later needs its own grant. The service
# role and the tables' owner (igsync's connections) keep every privilege. Where these roles
# do not exist (plain PostgreSQL) nothing happens; revoke and grant are safe to repeat.
_POSTGRES_5 = """\
do $$
declare
    reader text;
begin
    foreach reader in array array['anon', 'authenticated'] loop
        if exists (select from pg_catalog.pg_roles where rolname = reader) then
            execute format('revoke select on user_tokens from %I', reader);
            execute format(
                'grant select (token_id, u_id, platform, account_id, expires_at, token_kind,'
                ' status, last_refreshed_at, created_at, updated_at) on user_tokens to %I',
                reader
            );
        end if;
    end loop;
end
$$;
"""

# SQLite has no roles or privileges: whoever opens the file reads every column. Only the
# version record moves.
_SQLITE_5 = """\
-- nothing to change: SQLite has no roles or column privileges
"""

# Which run is syncing which account now, until when (issue 12, igsync.claims): overlapping
# runs take an account with a compare-and-swap on this row, so none is synced twice; a crashed
# run's rows expire. A finished account's row stays, released (`released_at`): a run that
# started before that release skips the account too, or runs walking the accounts side by side
# would sync again what the run just ahead had finished. One row per account ever synced.
# A table of igsync's own rather than columns on user_tokens: that table belongs to the app
# (no DDL, no trigger, no extra write per run there), and a claim is not a token's property.
# Keyed like the data it guards, (u_id, account_id). No foreign key to user_tokens: it would
# add triggers to the app's table. RLS on and no policy: a Supabase user or `anon` sees and
# changes nothing; the service role and the owner (igsync's writers) are not subject to it.
_POSTGRES_6 = """\
create table if not exists igsync_claims (
    u_id uuid not null,
    account_id text not null,
    claimed_by uuid not null,
    claimed_at timestamptz not null,
    claimed_until timestamptz not null,
    released_at timestamptz,
    primary key (u_id, account_id)
);
alter table igsync_claims enable row level security;
"""

# Timestamps always with microseconds, so that text order is time order.
_SQLITE_6 = """\
create table igsync_claims (
    u_id text not null,
    account_id text not null,
    claimed_by text not null,
    claimed_at text not null,
    claimed_until text not null,
    released_at text,
    primary key (u_id, account_id)
);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        version=1,
        name="initial schema",
        postgres=_POSTGRES_1,
        sqlite=_SQLITE_1,
        supabase_file="20261125000000_igsync_schema.sql",
    ),
    Migration(
        version=2,
        name="local_date",
        postgres=_POSTGRES_2,
        sqlite=_SQLITE_2,
        supabase_file="20261130000000_igsync_local_date.sql",
    ),
    Migration(
        version=3,
        name="streams",
        postgres=POSTGRES_3,
        sqlite=SQLITE_3,
        supabase_file="20261130000100_igsync_streams.sql",
    ),
    Migration(
        version=4,
        name="sync log streams",
        postgres=_POSTGRES_4,
        sqlite=_SQLITE_4,
        supabase_file="20261130000200_igsync_sync_log_streams.sql",
    ),
    Migration(
        version=5,
        name="token column privileges",
        postgres=_POSTGRES_5,
        sqlite=_SQLITE_5,
        supabase_file="20261130000300_igsync_token_column_privileges.sql",
    ),
    Migration(
        version=6,
        name="account claims",
        postgres=_POSTGRES_6,
        sqlite=_SQLITE_6,
        supabase_file="20261130000400_igsync_claims.sql",
    ),
    Migration(
        version=7,
        name="daily view of every account metric",
        postgres=POSTGRES_DAILY,
        sqlite=SQLITE_DAILY,
        supabase_file="20261130000500_igsync_daily_metrics.sql",
    ),
)
#: the schema version this igsync reads and writes
LATEST = MIGRATIONS[-1].version


def pending(current: int) -> list[Migration]:
    """The migrations a database at version `current` (0: empty) still needs, oldest first."""
    return [m for m in MIGRATIONS if m.version > current]


def _record(migration: Migration) -> str:
    # Constants only: the version is an int, the name a literal without quotes (a test says so).
    values = f"({migration.version}, '{migration.name}')"
    return f"insert into {VERSION_TABLE} (version, name) values {values} on conflict do nothing;\n"  # noqa: S608


def _sql(migration: Migration, dialect: Dialect) -> str:
    return migration.postgres if dialect == "postgres" else migration.sqlite


def _versions(first: int, last: int) -> str:
    return f"migration {first}" if first == last else f"migrations {first}-{last}"


def step_sql(migration: Migration, current: int, dialect: Dialect) -> str:
    """The SQL that takes a database at version `current` through `migration`.

    The version table if missing, a record for each version up to `current` that lacks one
    (a database made before version records counts as version 1 by its tables), the
    migration, its record. `current` must be below `migration.version`.
    """
    parts = ["-- the schema-version record\n", _version_table(dialect)]
    if current:
        parts.append(f"-- {_versions(1, current)}, applied before: recorded if not yet\n")
        parts.extend(_record(m) for m in MIGRATIONS if m.version <= current)
    parts.append(f"-- migration {migration.version}: {migration.name}\n")
    parts.append(_sql(migration, dialect) + _record(migration))
    return "".join(parts)


def _version_table(dialect: Dialect) -> str:
    return _POSTGRES_VERSION_TABLE if dialect == "postgres" else _SQLITE_VERSION_TABLE


def schema_sql(dialect: Dialect) -> str:
    """Every migration with its version record, in order: the whole schema, as SQL text.

    PostgreSQL: safe to run more than once, on an empty database or one at any earlier
    version. SQLite: for an empty database; igsync migrates a SQLite file itself on open.
    """
    if dialect == "postgres":
        header = (
            f"-- igsync schema (PostgreSQL / Supabase): {_versions(1, LATEST)}, each with its"
            " version record.\n-- Safe to run more than once, on an empty database or one at"
            " any earlier igsync version.\n"
        )
    else:
        header = (
            "-- igsync schema (SQLite mirror of the PostgreSQL reference):"
            f" {_versions(1, LATEST)}.\n-- For an empty database: igsync migrates an existing"
            " file itself when it opens it.\n"
        )
    parts = [header, "\n-- the schema-version record\n", _version_table(dialect)]
    for migration in MIGRATIONS:
        parts.append(f"\n-- migration {migration.version}: {migration.name}\n")
        parts.append(_sql(migration, dialect) + _record(migration))
    return "".join(parts)


def migration_sql(version: int, dialect: Dialect = "postgres") -> str:
    """Migration `version` alone, as its file under supabase/migrations/ holds it.

    It assumes the earlier migrations applied (their files come first) and records them too.
    Migration 1 is its file as shipped before version records existed; migration 2's records
    it. Raises KeyError for a version that does not exist.
    """
    by_version = {m.version: m for m in MIGRATIONS}
    migration = by_version[version]
    if version == 1:
        return _sql(migration, dialect)
    again = " Safe to run more than once." if dialect == "postgres" else ""
    header = (
        f"-- igsync schema migration {version}: {migration.name}.{again}\n"
        f"-- Needs {_versions(1, version - 1)} (igsync's files before this one).\n"
    )
    return header + step_sql(migration, version - 1, dialect)
