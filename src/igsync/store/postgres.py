"""PostgreSQL (and Supabase's PostgreSQL, directly or through its poolers) behind `Store`.

psycopg 3 async over a small connection pool. A large batch streams with binary COPY into a
temporary table, then one `INSERT … SELECT … ON CONFLICT DO UPDATE` moves it: measured against
`executemany` in pipeline mode, `unnest` of arrays and a JSON recordset, it was the fastest
(benchmarks/store_write.py). A small batch, such as the dozen rows one account's fetch writes,
goes as arrays in that one INSERT (`unnest`): there, creating and dropping the temporary table
cost more than the rows, and arrays are 3x faster.

Like the SQLite store, opening brings the schema up to date (schema.py's numbered migrations).
One cheap query reads the version record; a current schema is never touched, so a cron run
against a production database takes no DDL lock. A schema that is missing or behind gets its
pending migrations, one transaction each, under an advisory lock that queues concurrent openers.
When the role may not run DDL, opening fails with one line saying what to run instead.

Errors never leak a secret: they are built from PostgreSQL's primary message only, because its
`DETAIL: Failing row contains (…)` prints whole rows, tokens included (SUPABASE.md), then go
through `redact`, and the URL's password is masked wherever it shows up.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import unquote
from uuid import UUID

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from igsync.errors import StoreError
from igsync.models import InsightRow, SyncLog, TokenUpdate, UserToken
from igsync.redact import MASK, redact, register_secret
from igsync.store import dedupe_by_key
from igsync.store.schema import LATEST, MIGRATIONS, V1_TABLES, VERSION_TABLE, step_sql

_INSIGHT_COLUMNS = (
    "u_id, account_id, metric, metric_type, period, end_time, local_date, value, value_json"
)

# ON COMMIT DROP keeps the table inside the one transaction, so this works through Supabase's
# transaction pooler, which may hand every transaction a different server session.
_STAGE = """
create temp table igsync_stage (
    u_id uuid, account_id text, metric text, metric_type text, period text,
    end_time timestamptz, local_date date, value bigint, value_json jsonb
) on commit drop
"""
_STAGE_TYPES = ["uuid", "text", "text", "text", "text", "timestamptz", "date", "int8", "jsonb"]
_COPY = f"copy igsync_stage ({_INSIGHT_COLUMNS}) from stdin (format binary)"

_ON_CONFLICT = """
on conflict (u_id, account_id, metric, end_time) do update set
    metric_type = excluded.metric_type,
    period = excluded.period,
    local_date = excluded.local_date,
    value = excluded.value,
    value_json = excluded.value_json,
    fetched_at = excluded.fetched_at
"""

_UPSERT_STAGED = f"""
insert into instagram_insights ({_INSIGHT_COLUMNS}, fetched_at)
select {_INSIGHT_COLUMNS}, now() from igsync_stage
{_ON_CONFLICT}"""  # noqa: S608 - built from constant column lists

_UPSERT_ARRAYS = f"""
insert into instagram_insights ({_INSIGHT_COLUMNS}, fetched_at)
select {_INSIGHT_COLUMNS}, now()
from unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[], %s::timestamptz[],
            %s::date[], %s::int8[], %s::jsonb[]) as t({_INSIGHT_COLUMNS})
{_ON_CONFLICT}"""  # noqa: S608 - built from constant column lists

# From this many rows on, COPY into a temporary table beats arrays (measured: 3x slower at 12
# rows, 1.1-1.3x faster at 500 and 100,000).
COPY_MIN_ROWS = 200

_READ_INSIGHTS = f"""
select {_INSIGHT_COLUMNS} from instagram_insights
where (%(u_id)s::uuid is null or u_id = %(u_id)s)
  and (%(account_id)s::text is null or account_id = %(account_id)s)
order by account_id, metric, end_time, u_id
"""  # noqa: S608 - built from constant column lists

_TOKEN_COLUMNS = (
    "token_id, u_id, platform, access_token, account_id, expires_at, token_kind, status,"
    " last_refreshed_at, created_at, updated_at"
)

_LIST_TOKENS = f"""
select {_TOKEN_COLUMNS} from user_tokens
where platform = %(platform)s and (%(u_id)s::uuid is null or u_id = %(u_id)s)
order by u_id, account_id nulls first
"""  # noqa: S608 - built from constant column lists

_TOKEN_PAGE = f"""
select {_TOKEN_COLUMNS} from user_tokens
where platform = %(platform)s and (%(after)s::uuid is null or token_id > %(after)s)
order by token_id limit %(limit)s
"""  # noqa: S608 - built from constant column lists


def _token(r: Sequence[Any]) -> UserToken:
    register_secret(r[3])
    return UserToken(
        token_id=r[0],
        u_id=r[1],
        platform=r[2],
        access_token=r[3],
        account_id=r[4],
        expires_at=r[5],
        token_kind=r[6],
        status=r[7],
        last_refreshed_at=r[8],
        created_at=r[9],
        updated_at=r[10],
    )


# One statement: the users row (if missing) and the token, expiry and status together. The
# foreign key is checked at the end of the statement, after the CTE has added the user.
_SAVE_TOKEN = f"""
with new_user as (
    insert into users (u_id) values (%(u_id)s) on conflict (u_id) do nothing
)
insert into user_tokens ({_TOKEN_COLUMNS})
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
_UPDATE_TOKEN = """
update user_tokens set
    access_token = coalesce(%(access_token)s, access_token),
    expires_at = %(expires_at)s,
    status = %(status)s,
    last_refreshed_at = %(last_refreshed_at)s,
    updated_at = now()
where token_id = %(token_id)s and access_token = %(expected)s
"""

# The one query opening a current database costs: the newest migration recorded. A database
# without the record (empty, or made by igsync before migrations) fails it with 42P01.
_RECORDED_VERSION = f"select max(version) from {VERSION_TABLE}"  # noqa: S608 - constant name

# The exact state, without failing: is there a version record, are migration 1's tables there?
# to_regclass follows search_path, as queries do. `users` belongs to the app, but the foreign
# key of `user_tokens` needs it, so it counts too.
_SCHEMA_STATE = f"select to_regclass('{VERSION_TABLE}') is not null, " + " and ".join(
    f"to_regclass('{table}') is not null" for table in V1_TABLES
)

# Two processes migrating at once fail (unique violations in pg_extension, pg_type, a column
# added twice): migrators queue on this transaction-scoped advisory lock, and the later one
# finds the migration applied.
_SCHEMA_LOCK = "select pg_advisory_xact_lock(hashtext('igsync schema'))"

_CANNOT_CREATE = (
    "run `igsync db init` as a role that may create tables (e.g. the database owner),"
    " or apply the SQL of `igsync db schema --dialect postgres`"
)
_CANNOT_READ_VERSION = (
    f"grant select on {VERSION_TABLE} to this role (the schema grants it to every role;"
    " a revoked grant must be given back)"
)
_CANNOT_MIGRATE = (
    "run `igsync db init` as a role that may alter the igsync tables (e.g. their owner),"
    " or apply the SQL of `igsync db schema --dialect postgres` (safe on any earlier version)"
)

_DELETE_TOKENS = """
delete from user_tokens
where platform = 'instagram' and u_id = %(u_id)s
  and (%(account_id)s::text is null or account_id = %(account_id)s)
"""

_WRITE_SYNC_LOG = """
insert into instagram_sync_logs (run_id, u_id, account_id, started_at, finished_at, status,
    total_inserted, total_errors, errors, token_refreshed)
values (%(run_id)s, %(u_id)s, %(account_id)s, %(started_at)s, %(finished_at)s, %(status)s,
    %(total_inserted)s, %(total_errors)s, %(errors)s, %(token_refreshed)s)
"""

# What to do about the errors an operator can fix (SUPABASE.md, "Codes worth a clear message").
_HINTS = {
    "42P01": "the igsync tables are missing: run `igsync db init`",
    "42501": "permission denied: use a role (or the service-role key) that may write",
    "23503": "a referenced row is missing",
    "28P01": "wrong user name or password",
}

# Belt and braces: the message is built without DETAIL, but a client-side error could carry
# one. Everything after either marker goes: a row's values may hold any character at all.
_DETAIL_MARKERS = ("DETAIL:", "Failing row contains")
_URL_PASSWORD = re.compile(r"^[a-z][\w+.-]*://[^:/@\s]*:([^@\s]*)@", re.IGNORECASE)

_CONNECT_TIMEOUT_S = 10


def _passwords(url: str) -> list[str]:
    """Every spelling of the URL's password (it may be %-encoded), even in a malformed URL."""
    found: set[str] = set()
    if match := _URL_PASSWORD.match(url):
        found.add(match.group(1))
    try:
        if value := conninfo_to_dict(url).get("password"):
            found.add(str(value))
    except psycopg.Error:
        pass  # a URL libpq cannot parse: the pattern above is all there is
    found |= {unquote(p) for p in found}
    return sorted((p for p in found if p), key=len, reverse=True)


def _values(r: InsightRow) -> tuple[Any, ...]:
    """A row's values in `_INSIGHT_COLUMNS` order, adapted for psycopg."""
    value_json = None if r.value_json is None else Jsonb(r.value_json)
    return (
        r.u_id,
        r.account_id,
        r.metric,
        r.metric_type,
        r.period,
        r.end_time,
        r.local_date,
        r.value,
        value_json,
    )


async def _schema_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The database's schema version: its record, else 1 when migration 1's tables are all
    there (igsync before migrations), else 0."""
    cursor = await conn.execute(_SCHEMA_STATE)
    has_record, has_v1_tables = await cursor.fetchone() or (False, False)
    if has_record:
        cursor = await conn.execute(_RECORDED_VERSION)
        row = await cursor.fetchone()
        return int(row[0] or 0) if row else 0
    return 1 if has_v1_tables else 0


async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    """Apply every pending migration, each in one transaction, one migrator at a time."""
    for migration in MIGRATIONS:
        async with conn.transaction():
            await conn.execute(_SCHEMA_LOCK)
            # Read under the lock: another process may have applied it while this one waited.
            current = await _schema_version(conn)
            if current < migration.version:
                # No parameters: psycopg sends the whole script as one simple query.
                await conn.execute(step_sql(migration, current, "postgres"))


class PostgresStore:
    """`Store` on a PostgreSQL URL (`postgresql://user:password@host:port/db?sslmode=…`)."""

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self._url = url
        self._max_connections = max_connections
        self._secrets = _passwords(url)
        for password in self._secrets:
            register_secret(password)
        # Supabase's transaction pooler has no server-side prepared statements; a pooled
        # connection is used by one task at a time, so autocommit plus explicit transactions.
        self._connect_kwargs: dict[str, Any] = {"prepare_threshold": None, "autocommit": True}
        try:
            has_timeout = "connect_timeout" in conninfo_to_dict(url)
        except psycopg.Error:
            has_timeout = False
        if not has_timeout:
            self._connect_kwargs["connect_timeout"] = _CONNECT_TIMEOUT_S
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None

    async def __aenter__(self) -> Self:
        # The pool only says "timed out" when it cannot connect: one direct connection first
        # turns a wrong host, password or database into an error that says which.
        try:
            probe = await psycopg.AsyncConnection.connect(self._url, **self._connect_kwargs)
        except psycopg.Error as exc:
            raise self._error("cannot connect", exc) from None
        async with probe:
            await self._ensure_schema(probe)
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._url,
            kwargs=self._connect_kwargs,
            min_size=1,
            max_size=self._max_connections,
            open=False,
            name="igsync",
        )
        try:
            await pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            await pool.close()
            raise self._error("cannot connect", exc) from None
        self._pool = pool
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def _ensure_schema(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Migrate the schema to LATEST; a current (or newer) one costs one query, no DDL."""
        try:
            cursor = await conn.execute(_RECORDED_VERSION)
            row = await cursor.fetchone()
            if row is not None and row[0] is not None and row[0] >= LATEST:
                return
        except psycopg.errors.UndefinedTable:
            pass  # no version record yet: _schema_version tells empty from version 1
        except psycopg.Error as exc:
            hint = _CANNOT_READ_VERSION if exc.sqlstate == "42501" else None
            raise self._error("could not read the schema version", exc, hint=hint) from None
        current = 0
        try:
            current = await _schema_version(conn)
            await _migrate(conn)
        except psycopg.Error as exc:
            if current == 0:
                raise self._error(
                    "has no igsync tables and could not create them", exc, hint=_CANNOT_CREATE
                ) from None
            raise self._error(
                f"has the igsync schema at version {current}, this igsync needs {LATEST},"
                " and could not migrate it",
                exc,
                hint=_CANNOT_MIGRATE,
            ) from None

    def _error(self, action: str, exc: Exception, *, hint: str | None = None) -> StoreError:
        """A StoreError safe to show: no DETAIL (it holds whole rows), no password, no token."""
        if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
            text = exc.diag.message_primary
        else:
            text = str(exc)
        for marker in _DETAIL_MARKERS:
            text = text.split(marker, 1)[0]
        text = " ".join(text.split())
        for password in self._secrets:
            text = text.replace(password, MASK)
        sqlstate = exc.sqlstate if isinstance(exc, psycopg.Error) else None
        if sqlstate:
            text += f" [{sqlstate}]"
        if hint := hint or _HINTS.get(sqlstate or ""):
            text += f"; {hint}"
        return StoreError(f"PostgreSQL {action}: {redact(text)}")

    def _open_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self._pool is None:
            raise StoreError("PostgresStore is not open: use `async with PostgresStore(url)`")
        return self._pool

    async def _fetch(self, action: str, query: str, params: dict[str, Any]) -> list[Any]:
        try:
            async with self._open_pool().connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall()
        except psycopg.Error as exc:
            raise self._error(action, exc) from None

    async def _write(self, action: str, query: str, params: dict[str, Any]) -> int:
        try:
            async with self._open_pool().connection() as conn:
                cursor = await conn.execute(query, params)
                return cursor.rowcount
        except psycopg.Error as exc:
            raise self._error(action, exc) from None

    async def init_schema(self) -> None:
        """Bring the schema to LATEST (opening already does); no DDL when it is current.

        Raises StoreError, saying what to run, when this role may not run the DDL.
        """
        try:
            async with self._open_pool().connection() as conn:
                await self._ensure_schema(conn)
        except psycopg.Error as exc:
            raise self._error("schema", exc) from None

    async def upsert_insights(self, rows: Sequence[InsightRow]) -> int:
        batch = dedupe_by_key(rows)
        if not batch:
            return 0
        try:
            async with self._open_pool().connection() as conn, conn.transaction():
                cursor = conn.cursor()
                if len(batch) < COPY_MIN_ROWS:
                    columns = zip(*map(_values, batch), strict=True)
                    await cursor.execute(_UPSERT_ARRAYS, [list(c) for c in columns])
                else:
                    await cursor.execute(_STAGE)
                    async with cursor.copy(_COPY) as copy:
                        copy.set_types(_STAGE_TYPES)
                        for r in batch:
                            await copy.write_row(_values(r))
                    await cursor.execute(_UPSERT_STAGED)
                # The command tag counts each row inserted or updated: the rows RETURNING would
                # send back, without shipping them. A trigger or rule that drops a row silently
                # lowers it; raising here rolls the whole batch back.
                confirmed = cursor.rowcount
                if confirmed != len(batch):
                    raise StoreError(
                        f"PostgreSQL confirmed {confirmed} of {len(batch)} insight rows;"
                        " nothing written"
                    )
        except psycopg.Error as exc:
            raise self._error("upsert failed", exc) from None
        return confirmed

    async def read_insights(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[InsightRow]:
        rows = await self._fetch(
            "could not read insights", _READ_INSIGHTS, {"u_id": u_id, "account_id": account_id}
        )
        return [
            InsightRow(
                u_id=r[0],
                account_id=r[1],
                metric=r[2],
                metric_type=r[3],
                period=r[4],
                end_time=r[5],
                local_date=r[6],
                value=r[7],
                value_json=r[8],
            )
            for r in rows
        ]

    async def list_tokens(
        self, *, u_id: UUID | None = None, platform: str = "instagram"
    ) -> list[UserToken]:
        rows = await self._fetch(
            "could not list tokens", _LIST_TOKENS, {"u_id": u_id, "platform": platform}
        )
        return [_token(r) for r in rows]

    async def token_page(
        self, *, after: UUID | None, limit: int, platform: str = "instagram"
    ) -> list[UserToken]:
        params = {"after": after, "limit": limit, "platform": platform}
        rows = await self._fetch("could not list tokens", _TOKEN_PAGE, params)
        return [_token(r) for r in rows]

    async def save_token(self, token: UserToken) -> None:
        secret = token.access_token.get_secret_value()
        register_secret(secret)
        await self._write(
            "could not save the token",
            _SAVE_TOKEN,
            {
                "token_id": token.token_id,
                "u_id": token.u_id,
                "platform": token.platform,
                "access_token": secret,
                "account_id": token.account_id,
                "expires_at": token.expires_at,
                "token_kind": token.token_kind,
                "status": token.status,
                "last_refreshed_at": token.last_refreshed_at,
                "created_at": token.created_at,
            },
        )

    async def update_token(self, token_id: UUID, expected: str, update: TokenUpdate) -> bool:
        new_token = update.access_token.get_secret_value() if update.access_token else None
        register_secret(new_token)
        changed = await self._write(
            "could not update the token",
            _UPDATE_TOKEN,
            {
                "token_id": token_id,
                "expected": expected,
                "access_token": new_token,
                "expires_at": update.expires_at,
                "status": update.status,
                "last_refreshed_at": update.last_refreshed_at,
            },
        )
        return changed == 1

    async def delete_tokens(self, u_id: UUID, *, account_id: str | None = None) -> int:
        return await self._write(
            "could not delete tokens", _DELETE_TOKENS, {"u_id": u_id, "account_id": account_id}
        )

    async def write_sync_log(self, entry: SyncLog) -> None:
        await self._write(
            "could not write the sync log",
            _WRITE_SYNC_LOG,
            {
                "run_id": entry.run_id,
                "u_id": entry.u_id,
                "account_id": entry.account_id,
                "started_at": entry.started_at,
                "finished_at": entry.finished_at,
                "status": entry.status,
                "total_inserted": entry.total_inserted,
                "total_errors": entry.total_errors,
                "errors": Jsonb([redact(e) for e in entry.errors]),
                "token_refreshed": entry.token_refreshed,
            },
        )
