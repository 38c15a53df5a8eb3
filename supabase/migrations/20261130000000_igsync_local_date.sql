-- igsync schema migration 2: local_date. Safe to run more than once.
-- Needs migration 1 (igsync's files before this one).
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
-- migration 1, applied before: recorded if not yet
insert into igsync_schema_migrations (version, name) values (1, 'initial schema') on conflict do nothing;
-- migration 2: local_date
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
insert into igsync_schema_migrations (version, name) values (2, 'local_date') on conflict do nothing;
