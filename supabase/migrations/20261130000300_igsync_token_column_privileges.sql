-- igsync schema migration 5: token column privileges. Safe to run more than once.
-- Needs migrations 1-4 (igsync's files before this one).
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
-- migrations 1-4, applied before: recorded if not yet
insert into igsync_schema_migrations (version, name) values (1, 'initial schema') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (2, 'local_date') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (3, 'streams') on conflict do nothing;
insert into igsync_schema_migrations (version, name) values (4, 'sync log streams') on conflict do nothing;
-- migration 5: token column privileges
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
insert into igsync_schema_migrations (version, name) values (5, 'token column privileges') on conflict do nothing;
