"""The SQL of the PostgreSQL store (postgres.py): per-table upserts and reads, tokens, sync
logs, and the queries that read the schema version. Constants and builders only; no I/O.

    TableSql / TABLE_SQL   the statements that write and read each table of tables.py
    TOKEN_COLUMNS …        user_tokens: list, page, save, compare-and-swap, delete
    RECORDED_VERSION …     the schema version and the migration lock
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from igsync.store.schema import V1_TABLES, VERSION_TABLE
from igsync.store.tables import UPSERTED, Table

# ON COMMIT DROP keeps the stage inside the one transaction, so COPY works through Supabase's
# transaction pooler, which may hand every transaction a different server session.
_STAGE = "igsync_stage"


@dataclass(frozen=True)
class TableSql:
    """The statements that write and read one table.

    A large batch goes by COPY into a temporary table (`stage`, `copy` with `copy_types`),
    then `upsert_staged`, in one transaction; a small one as one array per column in
    `upsert_counted` (`unnest`), one statement that verifies its own count: its parameters
    are the arrays, then the number of rows sent; it returns that number, or fails, and so
    writes nothing, with UPSERT_SHORT_COUNT's message when the database confirms another.
    Both stamp the rows with the transaction's `now()`. `read` takes `u_id` and `account_id`
    (None: any).
    """

    stage: str
    copy: str
    copy_types: tuple[str, ...]
    upsert_staged: str
    upsert_counted: str
    read: str


#: The text a short count casts to bigint in `upsert_counted`, so that the statement fails
#: (22P02) and writes nothing; PostgreSQL quotes it in its message, with the count confirmed.
UPSERT_SHORT_COUNT = "igsync upsert confirmed"

# One statement, so no BEGIN and COMMIT around it: an autocommit statement is its own
# transaction, and any error in it undoes all of it, the insert in the CTE included. (Keeping
# the transaction would cost two round trips even pipelined: whether to COMMIT depends on the
# count, which the client must read first.) RETURNING sees exactly the rows the command tag
# counts (a BEFORE trigger returning NULL drops a row from both; rules, which could differ, are
# refused with ON CONFLICT anyway). `returning 1` names no column, so it needs no SELECT
# privilege, and row security already checks an upsert's rows against the SELECT policies,
# RETURNING or not. The ELSE branch depends on count(*), so the planner cannot fold it into an
# error up front (the caveat of "Expression Evaluation Rules" in PostgreSQL's docs); it runs
# only on a mismatch.
_COUNTED = """with upserted as (
{insert}
returning 1
)
select case when count(*) = %s then count(*)
    else ('{short} ' || count(*))::bigint end
from upserted"""


def table_sql(table: Table[Any]) -> TableSql:
    """The statements for `table`, built from its (constant) names and types."""
    names = ", ".join(table.names)
    typed = ", ".join(f"{name} {kind}" for name, kind in table.columns)
    arrays = ", ".join(f"%s::{kind}[]" for kind in table.types)
    insert = f"insert into {table.name} ({names}, {table.stamp})\nselect {names}, now()"
    return TableSql(
        stage=f"create temp table {_STAGE} ({typed}) on commit drop",
        copy=f"copy {_STAGE} ({names}) from stdin (format binary)",
        copy_types=table.types,
        upsert_staged=f"{insert} from {_STAGE}\n{table.on_conflict()}",
        upsert_counted=_COUNTED.format(
            insert=f"{insert}\nfrom unnest({arrays}) as t({names})\n{table.on_conflict()}",
            short=UPSERT_SHORT_COUNT,
        ),
        read=f"select {names} from {table.name}"  # noqa: S608 - constant names
        "\nwhere (%(u_id)s::uuid is null or u_id = %(u_id)s)"
        "\n  and (%(account_id)s::text is null or account_id = %(account_id)s)"
        f"\norder by {', '.join(table.order)}",
    )


TABLE_SQL = {table.name: table_sql(table) for table in UPSERTED}

TOKEN_COLUMNS = (
    "token_id, u_id, platform, access_token, account_id, expires_at, token_kind, status,"
    " last_refreshed_at, created_at, updated_at"
)

LIST_TOKENS = f"""
select {TOKEN_COLUMNS} from user_tokens
where platform = %(platform)s and (%(u_id)s::uuid is null or u_id = %(u_id)s)
order by u_id, account_id nulls first
"""  # noqa: S608 - built from constant column lists

TOKEN_PAGE = f"""
select {TOKEN_COLUMNS} from user_tokens
where platform = %(platform)s and (%(after)s::uuid is null or token_id > %(after)s)
order by token_id limit %(limit)s
"""  # noqa: S608 - built from constant column lists

# One statement: the users row (if missing) and the token, expiry and status together. The
# foreign key is checked at the end of the statement, after the CTE has added the user.
SAVE_TOKEN = f"""
with new_user as (
    insert into users (u_id) values (%(u_id)s) on conflict (u_id) do nothing
)
insert into user_tokens ({TOKEN_COLUMNS})
values (%(token_id)s, %(u_id)s, %(platform)s, %(access_token)s, %(account_id)s,
        %(expires_at)s, %(token_kind)s, %(status)s, %(last_refreshed_at)s,
        coalesce(%(created_at)s, now()), now())
on conflict (u_id, platform, account_id) do update set
    access_token = excluded.access_token,
    expires_at = excluded.expires_at,
    token_kind = excluded.token_kind,
    status = excluded.status,
    last_refreshed_at = excluded.last_refreshed_at,
    updated_at = excluded.updated_at
"""  # noqa: S608 - built from constant column lists

# Compare-and-swap on the token itself: a concurrent refresh that got there first wins.
UPDATE_TOKEN = """
update user_tokens set
    access_token = coalesce(%(access_token)s, access_token),
    expires_at = %(expires_at)s,
    status = %(status)s,
    last_refreshed_at = %(last_refreshed_at)s,
    updated_at = now()
where token_id = %(token_id)s and access_token = %(expected)s
"""

# The stored token of one row, as stored (encrypted or not), for update_token's comparison.
TOKEN_VALUE = "select access_token from user_tokens where token_id = %(token_id)s"

# The one query opening a current database costs: the newest migration recorded. A database
# without the record (empty, or made by igsync before migrations) fails it with 42P01.
RECORDED_VERSION = f"select max(version) from {VERSION_TABLE}"  # noqa: S608 - constant name

# The exact state, without failing: is there a version record, are migration 1's tables there?
# to_regclass follows search_path, as queries do. `users` belongs to the app, but the foreign
# key of `user_tokens` needs it, so it counts too.
SCHEMA_STATE = f"select to_regclass('{VERSION_TABLE}') is not null, " + " and ".join(
    f"to_regclass('{table}') is not null" for table in V1_TABLES
)

# Two processes migrating at once fail (unique violations in pg_extension, pg_type, a column
# added twice): migrators queue on this transaction-scoped advisory lock, and the later one
# finds the migration applied.
SCHEMA_LOCK = "select pg_advisory_xact_lock(hashtext('igsync schema'))"

DELETE_TOKENS = """
delete from user_tokens
where platform = 'instagram' and u_id = %(u_id)s
  and (%(account_id)s::text is null or account_id = %(account_id)s)
"""

# Sync logs, one per element of the arrays, verified as `upsert_counted` verifies its rows: when
# the database confirms fewer than `sent`, the statement fails, and so writes nothing, with
# UPSERT_SHORT_COUNT's message.
_LOGGED = """
with logged as (
insert into instagram_sync_logs (run_id, u_id, account_id, started_at, finished_at, status,
    total_inserted, total_errors, errors, token_refreshed, streams)
select * from unnest(%(run_id)s::uuid[], %(u_id)s::uuid[], %(account_id)s::text[],
    %(started_at)s::timestamptz[], %(finished_at)s::timestamptz[], %(status)s::text[],
    %(total_inserted)s::int8[], %(total_errors)s::int8[], %(errors)s::jsonb[],
    %(token_refreshed)s::bool[], %(streams)s::jsonb[])
returning 1
)"""
_VERIFIED = f"""where (select case when count(*) = %(sent)s then true
    else ('{UPSERT_SHORT_COUNT} ' || count(*))::boolean end from logged)"""  # noqa: S608

WRITE_SYNC_LOGS = f"{_LOGGED}\nselect {_VERIFIED}\n"

# WRITE_SYNC_LOGS and, in the same statement, the claims of the `release_*` arrays given back
# at their log's `finished_at` (claims.py: a claim is released when the account's sync log is
# written): one round trip writes a group's logs and releases, and all of them happen or none.
# It returns the key of each claim it released (a key matches at most one claim: it is the
# primary key). Only for a run that took claims: a role without rights on igsync_claims (a
# `fetch`'s) cannot run it, even with nothing to release.
WRITE_SYNC_LOGS_RELEASING = f"""{_LOGGED}, released as (
update igsync_claims c set claimed_until = r.finished_at, released_at = r.finished_at
from unnest(%(release_u_id)s::uuid[], %(release_account_id)s::text[],
    %(release_run_id)s::uuid[], %(release_finished_at)s::timestamptz[])
    as r(u_id, account_id, run_id, finished_at)
where c.u_id = r.u_id and c.account_id = r.account_id and c.claimed_by = r.run_id
  and c.released_at is null
returning c.u_id, c.account_id, c.claimed_by
)
select array(select u_id from released), array(select account_id from released),
    array(select claimed_by from released)
{_VERIFIED}
"""  # noqa: S608 - built from constant SQL

COUNT_TOKENS = "select count(*) from user_tokens where platform = %(platform)s"

# A page of sync logs, newest (last written) first, walking the primary key backwards: the
# latest run's logs come first, so `accounts list` reads a page or two, not the whole history.
SYNC_LOG_COLUMNS = (
    "id, run_id, u_id, account_id, started_at, finished_at, status, total_inserted,"
    " total_errors, errors, token_refreshed, streams"
)
SYNC_LOG_PAGE_QUERY = f"""
select {SYNC_LOG_COLUMNS} from instagram_sync_logs
where u_id is not null and (%(before)s::bigint is null or id < %(before)s)
order by id desc limit %(limit)s
"""  # noqa: S608 - constant columns

# Whether row-level security filters user_tokens for the current role: on, and the role neither
# a superuser, nor BYPASSRLS, nor the owner (or a member of it) unless FORCE is set (PostgreSQL,
# "Row Security Policies"). With no policy for the role, it then sees no row at all.
ROW_SECURITY_APPLIES = """
select c.relrowsecurity and not (r.rolsuper or r.rolbypassrls)
    and (c.relforcerowsecurity or not pg_has_role(current_user, c.relowner, 'USAGE')),
    current_user
from pg_class c, pg_roles r
where c.oid = 'user_tokens'::regclass and r.rolname = current_user
"""

# The indexes of igsync's tables in the schema queries resolve to: which are unique, valid and
# ready (a failed CREATE INDEX CONCURRENTLY leaves one invalid), and their columns.
TABLE_INDEXES = """
select c.relname::text, i.relname::text, x.indisunique, x.indisvalid and x.indisready,
       array(select a.attname::text from unnest(x.indkey::int2[]) as k(attnum)
             join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
             order by a.attname)
from pg_index x
join pg_class c on c.oid = x.indrelid
join pg_class i on i.oid = x.indexrelid
where c.relnamespace = (select oid from pg_namespace where nspname = current_schema())
  and c.relname = any(%(tables)s)
order by 1, 2
"""

# Account claims (igsync.claims). Taking a page of them is one statement: insert each claim,
# or take over one whose run crashed (expired, never released) or that was released before
# this run started (ON CONFLICT … WHERE runs under the row's lock, so two runs cannot both take
# one), and say who holds each. The keys come as two arrays, distinct and in the caller's
# order (sorted: runs claiming overlapping pages lock rows in one order, not into a deadlock).
# When a concurrent claim committed after this statement's snapshot, its row is invisible to
# the second select and nothing comes back for that key: the store asks again for it.
CLAIM_ACCOUNTS = """
with wanted as (
    select u_id, account_id, n
    from unnest(%(u_ids)s::uuid[], %(account_ids)s::text[])
        with ordinality as w(u_id, account_id, n)
),
taken as (
    insert into igsync_claims (u_id, account_id, claimed_by, claimed_at, claimed_until)
    select u_id, account_id, %(run_id)s, %(now)s, %(until)s from wanted order by n
    on conflict (u_id, account_id) do update set
        claimed_by = excluded.claimed_by,
        claimed_at = excluded.claimed_at,
        claimed_until = excluded.claimed_until,
        released_at = null
    where case when igsync_claims.released_at is null
        then igsync_claims.claimed_until <= excluded.claimed_at
        else igsync_claims.released_at <= %(run_started)s end
    returning u_id, account_id, claimed_by, claimed_until, released_at
)
select u_id, account_id, claimed_by, claimed_until, released_at from taken
union all
select c.u_id, c.account_id, c.claimed_by, c.claimed_until, c.released_at
from igsync_claims c join wanted w on c.u_id = w.u_id and c.account_id = w.account_id
where not exists (
    select from taken t where t.u_id = c.u_id and t.account_id = c.account_id
)
"""

RENEW_CLAIMS = """
update igsync_claims set claimed_until = %(until)s
where claimed_by = %(run_id)s and released_at is null
"""

RELEASE_CLAIM = """
update igsync_claims set claimed_until = %(now)s, released_at = %(now)s
where u_id = %(u_id)s and account_id = %(account_id)s and claimed_by = %(run_id)s
  and released_at is null
"""
