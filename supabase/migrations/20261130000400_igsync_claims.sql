-- igsync schema migration 6: account claims. Safe to run more than once.
-- Needs migrations 1-5 (igsync's files before this one).
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
-- migrations 1-5, applied before: recorded if not yet
insert into igsync_schema_migrations (version, name) values (1, 'initial schema') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (2, 'local_date') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (3, 'streams') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (4, 'sync log streams') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (5, 'token column privileges') on conflict do nothing;
-- migration 6: account claims
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
insert into igsync_schema_migrations (version, name) values (6, 'account claims') on conflict do nothing;
