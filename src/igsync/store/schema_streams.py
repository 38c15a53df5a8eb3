"""Migration 3 (schema.py): the tables of the audience, media and media-insight streams, and the
modelled views of DESIGN.md §6, in PostgreSQL (the reference) and its SQLite mirror.

    instagram_audience         one breakdown value per day captured (AudienceRow)
    instagram_media            one row per media object, stories included (MediaRow)
    instagram_media_insights   a media object's lifetime metric per day captured (MediaInsightRow)
    instagram_daily            view: one row per (u_id, account_id, local_date), one column per
                               metric of DAILY_METRICS, from instagram_insights
    instagram_audience_latest  view: the newest snapshot of each audience breakdown

Like every published migration, this text never changes once shipped (schema.py): it holds its
own constants rather than sharing ones a later change could edit.
"""

from __future__ import annotations

#: the columns of instagram_daily: igsync's default account metrics (DESIGN.md §3) and `views`
DAILY_METRICS = ("reach", "profile_views", "accounts_engaged", "follower_count", "views")

_PIVOT_POSTGRES = ",\n".join(
    f"            max(value) filter (where metric = '{m}') as {m}" for m in DAILY_METRICS
)
# FILTER on aggregates needs SQLite 3.30; Python builds linked to older ones are still about.
_PIVOT_SQLITE = ",\n".join(
    f"    max(case when metric = '{m}' then value end) as {m}" for m in DAILY_METRICS
)
_DAILY_METRIC_LIST = ", ".join(f"'{m}'" for m in DAILY_METRICS)

POSTGRES_3 = f"""\
-- The views below need security_invoker (PostgreSQL 15): fail with a clear line before any DDL.
do $$
begin
    if current_setting('server_version_num')::integer < 150000 then
        raise exception 'igsync schema migration 3 needs PostgreSQL 15 or later'
            using hint = 'its views use security_invoker, so RLS applies to their readers';
    end if;
end
$$;

create table if not exists instagram_audience (
    id bigint generated always as identity primary key,
    u_id uuid not null,
    account_id text not null,
    metric text not null,
    timeframe text not null,
    breakdown text not null,
    dimension_values text not null,
    captured_on date not null,
    value bigint not null,
    fetched_at timestamptz not null default now(),
    unique (u_id, account_id, metric, timeframe, breakdown, dimension_values, captured_on)
);

create table if not exists instagram_media (
    id bigint generated always as identity primary key,
    u_id uuid not null,
    account_id text not null,
    media_id text not null,
    media_type text,
    media_product_type text,
    timestamp timestamptz,
    permalink text,
    like_count bigint,
    comments_count bigint,
    updated_at timestamptz not null default now(),
    unique (u_id, account_id, media_id)
);

create table if not exists instagram_media_insights (
    id bigint generated always as identity primary key,
    u_id uuid not null,
    account_id text not null,
    media_id text not null,
    metric text not null,
    captured_on date not null,
    value bigint,
    value_json jsonb,
    fetched_at timestamptz not null default now(),
    unique (u_id, account_id, media_id, metric, captured_on)
);

-- Every unique key starts with (u_id, account_id): its index serves an account's reads, and a
-- media object's. These serve what the keys' column order cannot: the newest snapshot of a
-- breakdown (instagram_audience_latest), an account's media by posting time, and every media
-- object's snapshot of one day.
create index if not exists instagram_audience_latest_idx
    on instagram_audience (u_id, account_id, metric, timeframe, breakdown, captured_on);
create index if not exists instagram_media_timestamp_idx
    on instagram_media (u_id, account_id, timestamp);
create index if not exists instagram_media_insights_captured_on_idx
    on instagram_media_insights (u_id, account_id, captured_on);

-- Row-level security as in migration 1: a signed-in Supabase user reads only their own rows,
-- writes come from the service role or the tables' owner (no FORCE).
alter table instagram_audience enable row level security;
alter table instagram_media enable row level security;
alter table instagram_media_insights enable row level security;

do $$
begin
    if to_regprocedure('auth.uid()') is not null
        and exists (select from pg_catalog.pg_roles where rolname = 'authenticated')
    then
        drop policy if exists igsync_read_own on instagram_audience;
        create policy igsync_read_own on instagram_audience
            for select to authenticated using (u_id = (select auth.uid()));
        drop policy if exists igsync_read_own on instagram_media;
        create policy igsync_read_own on instagram_media
            for select to authenticated using (u_id = (select auth.uid()));
        drop policy if exists igsync_read_own on instagram_media_insights;
        create policy igsync_read_own on instagram_media_insights
            for select to authenticated using (u_id = (select auth.uid()));
    end if;
end
$$;

-- The modelled views. A view reads its tables with its owner's rights by default, and the
-- owner is exempt from RLS: any role that may select from it (Supabase grants `anon` and
-- `authenticated` every table and view in `public`) would read every user's rows. With
-- security_invoker the tables' policies apply to whoever reads the view.
-- A view is created only when missing: `create or replace` would turn a view that a later
-- migration changed back into this one each time the whole schema is applied again.
--
-- instagram_daily: a daily row per account and local date, one column per metric (null when
-- no value was stored, or Meta had none). Should two rows of a metric describe one local date
-- (an account that changed time zone), the larger value shows.
-- instagram_audience_latest: the rows of each breakdown's newest captured_on; a value that
-- dropped out of Meta's top 45 since then is not in it.
do $$
begin
    if to_regclass('instagram_daily') is null then
        create view instagram_daily with (security_invoker = true) as
        select u_id, account_id, local_date,
{_PIVOT_POSTGRES}
        from instagram_insights
        where local_date is not null and metric in ({_DAILY_METRIC_LIST})
        group by u_id, account_id, local_date;
    end if;
    if to_regclass('instagram_audience_latest') is null then
        create view instagram_audience_latest with (security_invoker = true) as
        select a.u_id, a.account_id, a.metric, a.timeframe, a.breakdown, a.dimension_values,
            a.captured_on, a.value, a.fetched_at
        from instagram_audience a
        where a.captured_on = (
            select max(b.captured_on) from instagram_audience b
            where b.u_id = a.u_id and b.account_id = a.account_id and b.metric = a.metric
                and b.timeframe = a.timeframe and b.breakdown = a.breakdown
        );
    end if;
end
$$;
"""  # noqa: S608 - built from the constant DAILY_METRICS

# Migration 1's SQLite mirror conventions: ISO-8601 text in UTC for timestamps, YYYY-MM-DD text
# for dates, uuid and jsonb as text; no RLS (SQLite has no roles). Views need no
# security_invoker either: whoever opens the file reads every row anyway.
_NOW = "(strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'))"

SQLITE_3 = f"""\
create table if not exists instagram_audience (
    id integer primary key autoincrement,
    u_id text not null,
    account_id text not null,
    metric text not null,
    timeframe text not null,
    breakdown text not null,
    dimension_values text not null,
    captured_on text not null,
    value integer not null,
    fetched_at text not null default {_NOW},
    unique (u_id, account_id, metric, timeframe, breakdown, dimension_values, captured_on)
);

create table if not exists instagram_media (
    id integer primary key autoincrement,
    u_id text not null,
    account_id text not null,
    media_id text not null,
    media_type text,
    media_product_type text,
    timestamp text,
    permalink text,
    like_count integer,
    comments_count integer,
    updated_at text not null default {_NOW},
    unique (u_id, account_id, media_id)
);

create table if not exists instagram_media_insights (
    id integer primary key autoincrement,
    u_id text not null,
    account_id text not null,
    media_id text not null,
    metric text not null,
    captured_on text not null,
    value integer,
    value_json text,
    fetched_at text not null default {_NOW},
    unique (u_id, account_id, media_id, metric, captured_on)
);

create index if not exists instagram_audience_latest_idx
    on instagram_audience (u_id, account_id, metric, timeframe, breakdown, captured_on);
create index if not exists instagram_media_timestamp_idx
    on instagram_media (u_id, account_id, timestamp);
create index if not exists instagram_media_insights_captured_on_idx
    on instagram_media_insights (u_id, account_id, captured_on);

create view if not exists instagram_daily as
select u_id, account_id, local_date,
{_PIVOT_SQLITE}
from instagram_insights
where local_date is not null and metric in ({_DAILY_METRIC_LIST})
group by u_id, account_id, local_date;

create view if not exists instagram_audience_latest as
select a.u_id, a.account_id, a.metric, a.timeframe, a.breakdown, a.dimension_values,
    a.captured_on, a.value, a.fetched_at
from instagram_audience a
where a.captured_on = (
    select max(b.captured_on) from instagram_audience b
    where b.u_id = a.u_id and b.account_id = a.account_id and b.metric = a.metric
        and b.timeframe = a.timeframe and b.breakdown = a.breakdown
);
"""  # noqa: S608 - built from the constant DAILY_METRICS
