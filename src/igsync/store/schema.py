"""The schema of DESIGN.md §6: PostgreSQL is the reference, SQLite mirrors it."""

from __future__ import annotations

from typing import Literal

Dialect = Literal["postgres", "sqlite"]

POSTGRES = """\
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

SQLITE = f"""\
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


def schema_sql(dialect: Dialect) -> str:
    return POSTGRES if dialect == "postgres" else SQLITE
