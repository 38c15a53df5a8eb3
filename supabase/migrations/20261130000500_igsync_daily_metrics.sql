-- igsync schema migration 7: daily view of every account metric. Safe to run more than once.
-- Needs migrations 1-6 (igsync's files before this one).
-- the schema-version record
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
-- migrations 1-6, applied before: recorded if not yet
insert into igsync_schema_migrations (version, name) values (1, 'initial schema') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (2, 'local_date') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (3, 'streams') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (4, 'sync log streams') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (5, 'token column privileges') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (6, 'account claims') on conflict do nothing;
-- migration 7: daily view of every account metric
create or replace view instagram_daily with (security_invoker = true) as
select u_id, account_id, local_date,
    max(value) filter (where metric = 'reach') as reach,
    max(value) filter (where metric = 'profile_views') as profile_views,
    max(value) filter (where metric = 'accounts_engaged') as accounts_engaged,
    max(value) filter (where metric = 'follower_count') as follower_count,
    max(value) filter (where metric = 'views') as views,
    max(value) filter (where metric = 'website_clicks') as website_clicks,
    max(value) filter (where metric = 'total_interactions') as total_interactions,
    max(value) filter (where metric = 'likes') as likes,
    max(value) filter (where metric = 'comments') as comments,
    max(value) filter (where metric = 'shares') as shares,
    max(value) filter (where metric = 'saves') as saves,
    max(value) filter (where metric = 'replies') as replies,
    max(value) filter (where metric = 'follows_and_unfollows') as follows_and_unfollows,
    max(value) filter (where metric = 'profile_links_taps') as profile_links_taps,
    max(value) filter (where metric = 'reposts') as reposts
from instagram_insights
where local_date is not null and metric in ('reach', 'profile_views', 'accounts_engaged', 'follower_count', 'views', 'website_clicks', 'total_interactions', 'likes', 'comments', 'shares', 'saves', 'replies', 'follows_and_unfollows', 'profile_links_taps', 'reposts')
group by u_id, account_id, local_date;
insert into igsync_schema_migrations (version, name) values (7, 'daily view of every account metric') on conflict do nothing;
