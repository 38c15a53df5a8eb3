"""PostgreSQL (and Supabase's PostgreSQL, directly or through its poolers) behind `Store`.

psycopg 3 async over a small connection pool. A large batch streams with binary COPY into a
temporary table, then one `INSERT … SELECT … ON CONFLICT DO UPDATE` moves it: measured against
`executemany` in pipeline mode, `unnest` of arrays and a JSON recordset, it was the fastest
(benchmarks/store_write.py). A small batch, such as the dozen rows one account's fetch writes,
goes as arrays in that one INSERT (`unnest`): there, creating and dropping the temporary table
cost more than the rows, and arrays are 3x faster.

`sync-all` makes few round trips, each costing the client more CPU than the server time it
waits for, so the accounts that ended together are written together (`write_group`): their
rows in one upsert per table, a small one an autocommit statement that verifies its own count
(no BEGIN and COMMIT: postgres_sql.py says how a short count still writes nothing), and their
sync logs in one statement that, inside a session, also releases the run's claims on their
accounts (`write_sync_logs`). Measured (benchmarks/sync_all.py, 10,000 accounts): 2.25 CPU-s
per 1,000 accounts one by one, 1.37 written together. Arrays
go with the dumper of their column's type (`_typed_arrays`), so psycopg does not scan every
element of every list to guess one.

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

import asyncio
import contextlib
import contextvars
import logging
import re
from collections.abc import AsyncGenerator, AsyncIterator, Collection, Iterable, Sequence
from datetime import datetime
from operator import attrgetter
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import unquote
from uuid import UUID

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import AdaptersMap
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Format, TransactionStatus
from psycopg.types.datetime import TimestamptzLoader
from psycopg_pool import AsyncConnectionPool, PoolClosed, PoolTimeout

from igsync.errors import StoreConfigError, StoreError, StoreUnavailableError
from igsync.models import AccountClaim, SyncLog, TokenRow, TokenUpdate, UserToken
from igsync.redact import MASK, redact, register_secret
from igsync.store import SYNC_LOG_PAGE, SYNC_LOG_SCAN, AccountKey
from igsync.store.postgres_sql import (
    CLAIM_ACCOUNTS,
    COUNT_TOKENS,
    DELETE_TOKENS,
    LIST_TOKENS,
    RECORDED_VERSION,
    RELEASE_CLAIM,
    RENEW_CLAIMS,
    ROW_SECURITY_APPLIES,
    SAVE_TOKEN,
    SCHEMA_LOCK,
    SCHEMA_STATE,
    SYNC_LOG_COLUMNS,
    SYNC_LOG_PAGE_QUERY,
    TABLE_INDEXES,
    TABLE_SQL,
    TOKEN_COLUMNS,
    TOKEN_PAGE,
    TOKEN_VALUE,
    UPDATE_TOKEN,
    UPSERT_SHORT_COUNT,
    WRITE_SYNC_LOGS,
    WRITE_SYNC_LOGS_RELEASING,
)
from igsync.store.schema import LATEST, MIGRATIONS, VERSION_TABLE, step_sql
from igsync.store.streaming import STREAM_BATCH, RowFilter, select_sql
from igsync.store.tables import UPSERTED, Keyed, PgType, Row, Table, TableRows, dedupe_by_key
from igsync.store.token_rows import token_row
from igsync.token_crypto import holds, seal

# From this many rows on, COPY into a temporary table beats arrays (measured: 3x slower at 12
# rows, 1.1-1.3x faster at 500 and 100,000).
COPY_MIN_ROWS = 200


#: the unique keys igsync's writes rely on: each upsert's `on conflict`, and the token key
UNIQUE_KEYS: dict[str, tuple[str, ...]] = {
    "users": ("u_id",),
    "user_tokens": ("u_id", "platform", "account_id"),
    **{table.name: table.key for table in UPSERTED},
}

_TOKEN_NAMES = [name.strip() for name in TOKEN_COLUMNS.split(",")]


class _TimestampOrText(TimestamptzLoader):
    """A timestamptz as a datetime, or as its text when datetime cannot hold it ('infinity',
    years past 9999 or BC): psycopg would fail the whole read of `user_tokens` for one row
    the app wrote so; as text, token_row reports that row alone (issue 11)."""

    def load(self, data: Buffer) -> datetime | str:  # type: ignore[override] # text on purpose
        try:
            return super().load(data)
        except psycopg.DataError:
            return bytes(data).decode()


def _token_params(token: UserToken) -> dict[str, Any]:
    """The parameters of SAVE_TOKEN; the token is registered as a secret first."""
    secret = token.access_token.get_secret_value()
    register_secret(secret)
    return {
        "token_id": token.token_id,
        "u_id": token.u_id,
        "platform": token.platform,
        "access_token": seal(secret),
        "account_id": token.account_id,
        "expires_at": token.expires_at,
        "token_kind": token.token_kind,
        "status": token.status,
        "last_refreshed_at": token.last_refreshed_at,
        "created_at": token.created_at,
    }


def _token(r: Sequence[Any]) -> TokenRow:
    return token_row(dict(zip(_TOKEN_NAMES, r, strict=True)))


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

# What to do about the errors an operator can fix (SUPABASE.md, "Codes worth a clear message").
_HINTS = {
    "42P01": "the igsync tables are missing: run `igsync db init`",
    "42501": (
        "permission denied: use a role with the igsync tables' grants (README, 'A cron role"
        " on PostgreSQL'), their owner, or on Supabase the service-role key"
    ),
    "23503": "a referenced row is missing",
    "28P01": "wrong user name or password",
}

# Belt and braces: the message is built without DETAIL, but a client-side error could carry
# one. Everything after either marker goes: a row's values may hold any character at all.
_DETAIL_MARKERS = ("DETAIL:", "Failing row contains")


def error_line(exc: BaseException, passwords: Iterable[str] = ()) -> str:
    """A database error as one line safe to show: psycopg's primary message (never DETAIL,
    which holds whole rows) and its SQLSTATE in brackets, `passwords` masked, redacted."""
    if isinstance(exc, psycopg.Error) and exc.diag.message_primary:
        text = exc.diag.message_primary
    else:
        text = str(exc)
    for marker in _DETAIL_MARKERS:
        text = text.split(marker, 1)[0]
    text = " ".join(text.split())
    for password in passwords:
        text = text.replace(password, MASK)
    if isinstance(exc, psycopg.Error) and exc.sqlstate:
        text += f" [{exc.sqlstate}]"
    return redact(text)


# Up to the last "@" before the host: a malformed password (a space, a stray "/") is still
# one, and libpq's complaint about it quotes it back.
_URL_PASSWORD = re.compile(r"^[a-z][\w+.-]*://[^:/@]*:(.*)@[^@]*$", re.IGNORECASE | re.DOTALL)

_CONNECT_TIMEOUT_S = 10
# A server that vanishes from the network (a partition, a paused VM) refuses nothing: without
# these a query on a connection to it waits out the kernel's TCP retries (about 15 minutes on
# Linux) and an idle one its 2-hour keepalive. libpq's parameters: sent data unacknowledged for
# 30 s, or an idle connection silent for 30 + 3 x 10 s, ends the connection; where the OS lacks
# the socket option libpq ignores it (https://www.postgresql.org/docs/current/libpq-connect.html).
_TCP_DEFAULTS = {
    "tcp_user_timeout": 30_000,  # milliseconds
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
#: seconds a query waits for a pooled connection (psycopg_pool's default, said out loud): a
#: stopped server costs at most this once per run, then the store is known dead
POOL_TIMEOUT_S = 30.0

# SQLSTATEs that mean the server went away or refuses sessions (class 08 connection
# exception, 57P01-57P04 admin or crash shutdown, cannot connect now, database dropped); an
# OperationalError without one is libpq losing its connection. Not among them: 40001/40P01
# (retry that transaction), 57014 (one statement cancelled), 53xxx (disk full, out of memory:
# one write fails while the next may pass).
_GONE_STATES = frozenset({"57P01", "57P02", "57P03", "57P04"})

log = logging.getLogger(__name__)


def _connection_lost(exc: psycopg.Error) -> bool:
    """Whether `exc` says the connection or the server is gone (not that one query failed)."""
    if isinstance(exc, PoolTimeout | PoolClosed):
        return True
    if not isinstance(exc, psycopg.OperationalError):
        return False
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _GONE_STATES


#: seconds between the fresh connections that tell a restarting server from a gone one
#: (`PostgresStore._answers_again`): about 3.5 s in all before a refusing server is down
RESTART_PAUSES_S = (0.0, 0.5, 1.0, 2.0)

_CHECK_URL = (
    "check the host, port, user, password and database of the URL (--db or IGSYNC_DATABASE_URL)"
)


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


def _typed_arrays() -> tuple[AdaptersMap, dict[PgType | Literal["bool"], type[list[Any]]]]:
    """The adapters igsync's connections use, and a list class per column type whose values
    they dump as an array of that type.

    psycopg dumps a plain list by looking at every element to pick an element type (its
    `_find_list_element`: all the types, and the largest int to choose int2, int4 or int8),
    about 7 % of a PostgreSQL sync-all's CPU. A list class bound to the array dumper of one
    type (the dumper psycopg itself registers for that array oid, so the elements are dumped
    as before, in binary) dumps without looking. A JSON value needs no Jsonb wrapper there:
    the jsonb dumper takes any value `json.dumps` takes. Only these private classes are
    registered, and on a copy of psycopg's adapters, so no other psycopg user changes.
    """
    adapters = AdaptersMap(psycopg.adapters)
    arrays: dict[PgType | Literal["bool"], type[list[Any]]] = {}
    kinds: list[PgType | Literal["bool"]] = [kind for table in UPSERTED for kind in table.types]
    kinds.append("bool")  # the sync logs' token_refreshed
    for kind in sorted(set(kinds)):
        info = adapters.types[kind]
        arrays[kind] = type(f"_{kind.title()}Array", (list,), {})
        adapters.register_dumper(
            arrays[kind], adapters.get_dumper_by_oid(info.array_oid, Format.BINARY)
        )
    return adapters, arrays


_ADAPTERS, _ARRAYS = _typed_arrays()
_UUIDS, _TEXTS, _TIMES, _INTS, _JSONS, _BOOLS = (
    _ARRAYS[kind] for kind in ("uuid", "text", "timestamptz", "int8", "jsonb", "bool")
)
#: each table's array classes, in `Table.names` order
_TABLE_ARRAYS = {table.name: tuple(_ARRAYS[kind] for kind in table.types) for table in UPSERTED}

#: a short count in `upsert_counted` (postgres_sql.py): PostgreSQL quotes the text it failed
#: to cast, count included
_SHORT_COUNT = re.compile(re.escape(UPSERT_SHORT_COUNT) + r" (\d+)")


def _short_count_error(confirmed: int, sent: int, table: Table[Any]) -> StoreError:
    return StoreError(f"PostgreSQL confirmed {confirmed} of {sent} {table.noun}; nothing written")


def _short_count(exc: psycopg.Error) -> int | None:
    """The count an upsert confirmed when `exc` is its own refusal of a short count."""
    if exc.sqlstate != "22P02":
        return None
    found = _SHORT_COUNT.search(exc.diag.message_primary or "")
    return int(found.group(1)) if found else None


async def _schema_version(conn: psycopg.AsyncConnection[Any]) -> int:
    """The database's schema version: its record, else 1 when migration 1's tables are all
    there (igsync before migrations), else 0."""
    cursor = await conn.execute(SCHEMA_STATE)
    has_record, has_v1_tables = await cursor.fetchone() or (False, False)
    if has_record:
        cursor = await conn.execute(RECORDED_VERSION)
        row = await cursor.fetchone()
        return int(row[0] or 0) if row else 0
    return 1 if has_v1_tables else 0


async def _migrate(conn: psycopg.AsyncConnection[Any]) -> None:
    """Apply every pending migration, each in one transaction, one migrator at a time."""
    for migration in MIGRATIONS:
        async with conn.transaction():
            await conn.execute(SCHEMA_LOCK)
            # Read under the lock: another process may have applied it while this one waited.
            current = await _schema_version(conn)
            if current < migration.version:
                # No parameters: psycopg sends the whole script as one simple query.
                await conn.execute(step_sql(migration, current, "postgres"))


class PostgresStore(TableRows):
    """`Store` on a PostgreSQL URL (`postgresql://user:password@host:port/db?sslmode=…`)."""

    #: the accounts that ended while the last were written go in one upsert per table and one
    #: statement of sync logs and claim releases, on one connection (`Store.write_group`)
    write_group = 16

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self._url = url
        self._max_connections = max_connections
        self._secrets = _passwords(url)
        for password in self._secrets:
            register_secret(password)
        # Supabase's transaction pooler has no server-side prepared statements; a pooled
        # connection is used by one task at a time, so autocommit plus explicit transactions.
        self._connect_kwargs: dict[str, Any] = {
            "prepare_threshold": None,
            "autocommit": True,
            "context": _ADAPTERS,
        }
        try:
            given = conninfo_to_dict(url)
        except psycopg.Error:
            given = {}
        # the URL's own settings win
        defaults = {"connect_timeout": _CONNECT_TIMEOUT_S, **_TCP_DEFAULTS}
        self._connect_kwargs |= {k: v for k, v in defaults.items() if k not in given}
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        #: set once the server was found gone; every call then fails at once with it
        self._down: StoreUnavailableError | None = None
        self._probing = asyncio.Lock()
        #: the runs this store took a claim for: their role may release claims (write_sync_logs)
        self._claiming: set[UUID] = set()

    async def __aenter__(self) -> Self:
        # The pool only says "timed out" when it cannot connect: one direct connection first
        # turns a wrong host, password or database into an error that says which.
        try:
            probe = await psycopg.AsyncConnection.connect(self._url, **self._connect_kwargs)
        except psycopg.Error as exc:
            raise self._error(
                "cannot connect", exc, fallback=_CHECK_URL, error=StoreConfigError
            ) from None
        async with probe:
            await self._ensure_schema(probe)
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._url,
            kwargs=self._connect_kwargs,
            min_size=1,
            max_size=self._max_connections,
            timeout=POOL_TIMEOUT_S,
            open=False,
            name="igsync",
        )
        try:
            await pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            await pool.close()
            raise self._error(
                "cannot connect", exc, fallback=_CHECK_URL, error=StoreConfigError
            ) from None
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
            cursor = await conn.execute(RECORDED_VERSION)
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

    def _error(
        self,
        action: str,
        exc: Exception,
        *,
        hint: str | None = None,
        fallback: str | None = None,
        error: type[StoreError] = StoreError,
    ) -> StoreError:
        """An `error` safe to show: no DETAIL (it holds whole rows), no password, no token."""
        text = error_line(exc, self._secrets)
        sqlstate = exc.sqlstate if isinstance(exc, psycopg.Error) else None
        if hint := hint or _HINTS.get(sqlstate or "") or fallback:
            text += f"; {hint}"
        return error(f"PostgreSQL {action}: {text}")

    async def _failed(self, action: str, exc: psycopg.Error) -> StoreError:
        """The error to raise for `exc`: StoreUnavailableError when the server is gone, else
        this one call's StoreError.

        A lost connection alone does not prove the server gone: a pooled connection may
        have died in a restart or an idle timeout while the server answers again. So one new
        connection is tried (one at a time, each bounded by connect_timeout); if it fails the
        store is marked down and its pool closed, which wakes every call waiting for a
        connection at once instead of after POOL_TIMEOUT_S each.
        """
        if self._down is not None:
            return StoreUnavailableError(str(self._down))
        error = self._error(action, exc)
        if not _connection_lost(exc):
            return error
        async with self._probing:
            if self._down is None:
                if await self._answers_again():
                    if self._pool is not None:
                        with contextlib.suppress(psycopg.Error):
                            await self._pool.check()  # drop the other dead connections now
                    return error
                hint = "check that the server is up and reachable, then run again"
                gone = self._error("stopped answering", exc, hint=hint)
                self._down = StoreUnavailableError(str(gone))
                log.error("%s", self._down)
                if self._pool is not None:
                    await self._pool.close(timeout=1)
        return StoreUnavailableError(str(self._down))

    async def _answers_again(self) -> bool:
        """Whether the server answers a new connection, tried again while it is refused at
        once: a restart (`pg_ctl restart -m fast`) refuses connections for about a second,
        and taking it for an outage would stop the run for nothing. A try that timed out is
        not a restart: the server is not there."""
        loop = asyncio.get_running_loop()
        for pause in RESTART_PAUSES_S:
            await asyncio.sleep(pause)
            started = loop.time()
            if await self._answers():
                return True
            if loop.time() - started > 1:
                return False
        return False

    async def _answers(self) -> bool:
        """Whether a new connection to the server works (`select 1`)."""
        try:
            conn = await psycopg.AsyncConnection.connect(self._url, **self._connect_kwargs)
        except psycopg.Error:
            return False
        try:
            await conn.execute("select 1")
        except psycopg.Error:
            return False
        finally:
            await conn.close()
        return True

    def _open_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if self._down is not None:
            raise StoreUnavailableError(str(self._down))
        if self._pool is None:
            raise StoreError("PostgresStore is not open: use `async with PostgresStore(url)`")
        return self._pool

    async def _fetch(self, action: str, query: str, params: dict[str, Any]) -> list[Any]:
        try:
            async with self._connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchall()
        except psycopg.Error as exc:
            raise await self._failed(action, exc) from None

    async def _fetch_tokens(self, query: str, params: dict[str, Any]) -> list[TokenRow]:
        try:
            async with self._connection() as conn:
                cursor = conn.cursor()
                cursor.adapters.register_loader("timestamptz", _TimestampOrText)
                await cursor.execute(query, params)
                rows = await cursor.fetchall()
        except psycopg.Error as exc:
            raise await self._failed("could not list tokens", exc) from None
        return [_token(r) for r in rows]

    async def _write(self, action: str, query: str, params: dict[str, Any]) -> int:
        try:
            async with self._connection() as conn:
                cursor = await conn.execute(query, params)
                return cursor.rowcount
        except psycopg.Error as exc:
            raise await self._failed(action, exc) from None

    async def init_schema(self) -> None:
        """Bring the schema to LATEST (opening already does); no DDL when it is current.

        Raises StoreError, saying what to run, when this role may not run the DDL.
        """
        try:
            async with self._connection() as conn:
                await self._ensure_schema(conn)
        except psycopg.Error as exc:
            raise await self._failed("schema", exc) from None

    async def _upsert(self, table: Table[Any], rows: Sequence[Keyed]) -> int:
        """Upsert `rows` (one per key, the last wins) in one transaction, verified.

        Raises StoreError, the whole batch rolled back, when PostgreSQL refuses a row or
        confirms another count than the rows sent.
        """
        batch = dedupe_by_key(rows)
        if not batch:
            return 0
        statements = TABLE_SQL[table.name]
        values = attrgetter(*table.names)
        try:
            async with self._connection() as conn:
                if len(batch) < COPY_MIN_ROWS:
                    # One statement, its own transaction: it returns the count or fails.
                    columns = zip(*map(values, batch), strict=True)
                    arrays = _TABLE_ARRAYS[table.name]
                    params = [array(c) for array, c in zip(arrays, columns, strict=True)]
                    cursor = await conn.execute(statements.upsert_counted, [*params, len(batch)])
                    confirmed = int((await cursor.fetchone() or (0,))[0])
                else:
                    # The stage lives for one transaction (ON COMMIT DROP), so this path keeps
                    # BEGIN and COMMIT; the count is checked before COMMIT.
                    async with conn.transaction():
                        cursor = conn.cursor()
                        await cursor.execute(statements.stage)
                        async with cursor.copy(statements.copy) as copy:
                            copy.set_types(list(statements.copy_types))
                            for r in batch:
                                await copy.write_row(values(r))
                        await cursor.execute(statements.upsert_staged)
                        # The command tag counts each row inserted or updated: the rows
                        # RETURNING would send back, without shipping them. A trigger that
                        # drops a row silently lowers it; raising here rolls the batch back.
                        confirmed = cursor.rowcount
                        if confirmed != len(batch):
                            raise _short_count_error(confirmed, len(batch), table)
        except psycopg.Error as exc:
            if (short_count := _short_count(exc)) is None:
                raise await self._failed("upsert failed", exc) from None
            raise _short_count_error(short_count, len(batch), table) from None
        return confirmed

    async def _read(
        self, table: Table[Row], u_id: UUID | None, account_id: str | None
    ) -> list[Row]:
        """Rows of `table`, filtered by user and account (None: all), in `table.order`."""
        params = {"u_id": u_id, "account_id": account_id}
        rows = await self._fetch(f"could not read {table.noun}", TABLE_SQL[table.name].read, params)
        return [table.model.model_validate(dict(zip(table.names, r, strict=True))) for r in rows]

    async def list_tokens(
        self, *, u_id: UUID | None = None, platform: str = "instagram"
    ) -> list[TokenRow]:
        return await self._fetch_tokens(LIST_TOKENS, {"u_id": u_id, "platform": platform})

    async def token_page(
        self, *, after: UUID | str | None, limit: int, platform: str = "instagram"
    ) -> list[TokenRow]:
        # a BadTokenRow's token_id is text, but PostgreSQL's uuid column held it: a UUID
        params = {
            "after": None if after is None else UUID(str(after)),
            "limit": limit,
            "platform": platform,
        }
        return await self._fetch_tokens(TOKEN_PAGE, params)

    async def save_token(self, token: UserToken) -> None:
        await self._write("could not save the token", SAVE_TOKEN, _token_params(token))

    async def update_token(self, token_id: UUID, expected: str, update: TokenUpdate) -> bool:
        new_token = update.access_token.get_secret_value() if update.access_token else None
        register_secret(new_token)
        # The swap compares the stored value read here: an encrypted token differs from the
        # token it holds (token_crypto.py), and any write in between changes that value.
        found = await self._fetch("could not read the token", TOKEN_VALUE, {"token_id": token_id})
        if len(found) != 1 or not holds(found[0][0], expected):
            return False
        changed = await self._write(
            "could not update the token",
            UPDATE_TOKEN,
            {
                "token_id": token_id,
                "expected": found[0][0],
                "access_token": None if new_token is None else seal(new_token),
                "expires_at": update.expires_at,
                "status": update.status,
                "last_refreshed_at": update.last_refreshed_at,
            },
        )
        return changed == 1

    async def delete_tokens(self, u_id: UUID, *, account_id: str | None = None) -> int:
        return await self._write(
            "could not delete tokens", DELETE_TOKENS, {"u_id": u_id, "account_id": account_id}
        )

    async def write_sync_logs(self, entries: Sequence[SyncLog]) -> None:
        """Write `entries` in one statement, verified. Inside a `session`, for a run this store
        took claims for, the same statement releases the run's claim on each entry's account
        (at its `finished_at`), as the run would right after (claims.py: a claim is released
        when the account's sync log is written): one round trip for a group of accounts, and
        all of it or none. `release_claim` in the same session then reports those releases
        without a statement. Raises StoreError (the claims then still held) or
        StoreUnavailableError, as any write."""
        if not entries:
            return
        held = self._own_session()
        releasing = (
            []
            if held is None
            else [e for e in entries if e.run_id in self._claiming and e.u_id and e.account_id]
        )
        params: dict[str, Any] = {
            "run_id": _UUIDS([e.run_id for e in entries]),
            "u_id": _UUIDS([e.u_id for e in entries]),
            "account_id": _TEXTS([e.account_id for e in entries]),
            "started_at": _TIMES([e.started_at for e in entries]),
            "finished_at": _TIMES([e.finished_at for e in entries]),
            "status": _TEXTS([e.status for e in entries]),
            "total_inserted": _INTS([e.total_inserted for e in entries]),
            "total_errors": _INTS([e.total_errors for e in entries]),
            "errors": _JSONS([[redact(m) for m in e.errors] for e in entries]),
            "token_refreshed": _BOOLS([e.token_refreshed for e in entries]),
            "streams": _JSONS([e.streams for e in entries]),
            "sent": len(entries),
        }
        query = WRITE_SYNC_LOGS
        if releasing:
            query = WRITE_SYNC_LOGS_RELEASING
            params["release_u_id"] = _UUIDS([e.u_id for e in releasing])
            params["release_account_id"] = _TEXTS([e.account_id for e in releasing])
            params["release_run_id"] = _UUIDS([e.run_id for e in releasing])
            params["release_finished_at"] = _TIMES([e.finished_at for e in releasing])
        try:
            async with self._connection() as conn:
                cursor = await conn.execute(query, params)
                released = await cursor.fetchone() if releasing else None
        except psycopg.Error as exc:
            if (short_count := _short_count(exc)) is None:
                raise await self._failed("could not write the sync log", exc) from None
            raise StoreError(
                f"PostgreSQL confirmed {short_count} of {len(entries)} sync log rows;"
                " nothing written"
            ) from None
        if held is not None and released is not None:
            held.released.update(zip(*released, strict=True))

    async def save_tokens(self, tokens: Sequence[UserToken]) -> int:
        batch = list({(t.u_id, t.platform, t.account_id): t for t in tokens}.values())
        if not batch:
            return 0
        try:
            # executemany pipelines the statements: one round trip for the chunk, not one a row
            async with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(SAVE_TOKEN, [_token_params(t) for t in batch])
        except psycopg.Error as exc:
            raise self._error("could not save the tokens", exc) from None
        return len(batch)

    async def stream_rows(
        self,
        table: Table[Row],
        *,
        rows: RowFilter | None = None,
        order: Sequence[str] | None = None,
    ) -> AsyncGenerator[Row, None]:
        """A server-side (named) cursor inside a read transaction, STREAM_BATCH rows per
        round trip; it works through Supabase's transaction pooler too (one transaction)."""
        sql, params = select_sql(table, rows or RowFilter(), order, "postgres")
        try:
            async with (
                self._open_pool().connection() as conn,  # never the session's: see session()
                conn.transaction(),
                conn.cursor(name="igsync_stream") as cursor,
            ):
                await cursor.execute(sql, params)
                names, validate = table.names, table.model.model_validate
                while batch := await cursor.fetchmany(STREAM_BATCH):
                    for r in batch:
                        yield validate(dict(zip(names, r, strict=True)))
        except psycopg.Error as exc:
            raise self._error(f"could not read {table.noun}", exc) from None

    async def count_tokens(self, *, platform: str = "instagram") -> int:
        rows = await self._fetch("could not count tokens", COUNT_TOKENS, {"platform": platform})
        return int(rows[0][0])

    async def schema_version(self) -> int | None:
        try:
            rows = await self._fetch("could not read the schema version", RECORDED_VERSION, {})
        except StoreError:
            return None
        return None if rows[0][0] is None else int(rows[0][0])

    async def latest_sync_logs(self, accounts: Collection[AccountKey]) -> dict[AccountKey, SyncLog]:
        wanted, found = set(accounts), dict[AccountKey, SyncLog]()
        names = [name.strip() for name in SYNC_LOG_COLUMNS.split(",")]
        before: int | None = None
        for _ in range(0, SYNC_LOG_SCAN, SYNC_LOG_PAGE):
            if not wanted - found.keys():
                break
            page = await self._fetch(
                "could not read the sync logs",
                SYNC_LOG_PAGE_QUERY,
                {"before": before, "limit": SYNC_LOG_PAGE},
            )
            for r in page:
                row = dict(zip(names, r, strict=True))
                key = (str(row["u_id"]), row["account_id"])
                if key in wanted and key not in found:
                    found[key] = SyncLog.model_validate(row)
            if len(page) < SYNC_LOG_PAGE:
                break
            before = page[-1][0]
        return found

    async def row_security_role(self) -> str | None:
        """The current role's name when row-level security filters `user_tokens` for it (not
        a superuser, not BYPASSRLS, not the owner); None when it reads every row. PostgreSQL
        only (doctor's diagnosis of a role that sees no account), not part of `Store`."""
        rows = await self._fetch("could not read the role", ROW_SECURITY_APPLIES, {})
        applies, role = rows[0] if rows else (False, None)
        return str(role) if applies else None

    async def check_integrity(self, *, quick: bool = False) -> list[str]:
        """What PostgreSQL can check cheaply (`quick` changes nothing here): the schema
        version is the one this igsync needs, and each unique key igsync's writes rely on
        (UNIQUE_KEYS) has a unique index that is valid and ready (`pg_index.indisvalid`,
        `indisready`: a failed CREATE INDEX CONCURRENTLY or REINDEX leaves it invalid, and
        an upsert then fails or duplicates). Any other invalid index of igsync's tables is
        listed too. Pages are not read: that is PostgreSQL's own job (amcheck, checksums).
        """
        problems: list[str] = []
        version = await self._fetch("could not read the schema version", RECORDED_VERSION, {})
        current = version[0][0] if version and version[0][0] is not None else 0
        if current < LATEST:
            problems.append(
                f"the schema is at version {current}, this igsync needs {LATEST}:"
                " run `igsync db init`"
            )
        rows = await self._fetch(
            "could not read the indexes",
            TABLE_INDEXES,
            {"tables": [*UNIQUE_KEYS, "instagram_sync_logs", VERSION_TABLE]},
        )
        for table, key in UNIQUE_KEYS.items():
            matching = [r for r in rows if r[0] == table and r[2] and sorted(r[4]) == sorted(key)]
            if not matching:
                problems.append(
                    f"{table} has no unique index on ({', '.join(key)}): its writes cannot"
                    f" upsert; create it again (`alter table {table} add unique"
                    f" ({', '.join(key)})`; `db init` applies only migrations not applied yet)"
                )
        problems += [
            f"index {index} on {table} is invalid (a CREATE INDEX CONCURRENTLY or REINDEX"
            f" failed): run `REINDEX INDEX {index}`"
            for table, index, _, valid, _ in rows
            if not valid
        ]
        return problems

    # --- account claims (igsync.claims) ---

    async def claim_accounts(
        self,
        keys: Sequence[tuple[UUID, str]],
        run_id: UUID,
        now: datetime,
        until: datetime,
        run_started: datetime,
    ) -> dict[tuple[UUID, str], AccountClaim]:
        # sorted: two runs claiming overlapping pages take the rows' locks in one order
        left = sorted(set(keys))
        params: dict[str, Any] = {
            "run_id": run_id,
            "now": now,
            "until": until,
            "run_started": run_started,
        }
        claims: dict[tuple[UUID, str], AccountClaim] = {}
        if not left:
            return claims
        for _ in range(_CLAIM_ATTEMPTS):
            params["u_ids"] = [u_id for u_id, _ in left]
            params["account_ids"] = [account_id for _, account_id in left]
            rows = await self._fetch("could not claim accounts", CLAIM_ACCOUNTS, params)
            self._claiming.add(run_id)  # its role may write igsync_claims: see write_sync_logs
            for u_id, account_id, holder, claimed_until, released_at in rows:
                claims[(u_id, account_id)] = AccountClaim(
                    claimed=holder == run_id and released_at is None,
                    claimed_by=holder,
                    claimed_until=claimed_until,
                    released_at=released_at,
                )
            # a key another run claimed after this statement's snapshot: ask again
            left = [key for key in left if key not in claims]
            if not left:
                return {key: claims[key] for key in dict.fromkeys(keys)}
        raise StoreError(
            f"PostgreSQL could not claim account {left[0][1]}: its claim changed"
            f" {_CLAIM_ATTEMPTS} times while igsync read it"
        )

    async def renew_claims(self, run_id: UUID, until: datetime) -> int:
        return await self._write(
            "could not renew claims", RENEW_CLAIMS, {"run_id": run_id, "until": until}
        )

    async def release_claim(self, u_id: UUID, account_id: str, run_id: UUID, now: datetime) -> bool:
        """Release the claim; True when this run held it. One this session's `write_sync_logs`
        already released (at the log's `finished_at`) is reported without a statement."""
        held = self._own_session()
        if held is not None and (u_id, account_id, run_id) in held.released:
            held.released.discard((u_id, account_id, run_id))
            return True
        params = {"u_id": u_id, "account_id": account_id, "run_id": run_id, "now": now}
        return await self._write("could not release a claim", RELEASE_CLAIM, params) == 1

    # --- sessions: one pooled connection for a task's calls ---

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Within it, every call this asyncio task makes on the store uses one pooled
        connection: taken from the pool at the first call (a session that makes none takes
        none) and given back at exit. See `Store.session`.

        Each call keeps its own transaction (autocommit, `conn.transaction()` per write): a
        refused upsert rolls back alone and the next call goes on on the same connection. A
        connection a call leaves broken, or mid-transaction or mid-query (a cancelled call), is
        given back at once, so psycopg_pool discards or resets it, before `_failed` probes the
        server; the session's next call takes another. The session is the task's own (a
        ContextVar, copied into every task created inside it): a task created inside it, which
        could run calls concurrently with it, takes its own connections instead. A session
        inside a session of the same task and store is the outer one. `stream_rows` always
        takes its own connection: its transaction spans the reader's other calls. Raises
        nothing itself; the calls inside raise as they would outside.
        """
        if self._own_session() is not None:
            yield
            return
        held = _Session(self, asyncio.current_task())
        reset = _SESSION.set(held)
        try:
            yield
        finally:
            _SESSION.reset(reset)
            await held.give_back()

    def _own_session(self) -> _Session | None:
        """The session this task holds on this store (None: none)."""
        held = _SESSION.get()
        if held is None or held.store is not self or held.task is not asyncio.current_task():
            return None
        return held

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """The connection for one call: the session's (`session`), else one from the pool
        for this call alone. Raises StoreUnavailableError once the store is known dead,
        PoolTimeout when no connection came within POOL_TIMEOUT_S."""
        pool = self._open_pool()
        held = self._own_session()
        if held is None:
            async with pool.connection() as conn:
                yield conn
            return
        conn = await held.connection(pool)
        try:
            yield conn
        except BaseException:
            if conn.pgconn.transaction_status != TransactionStatus.IDLE:
                await held.give_back()
            raise


#: a claim whose row another run changes this many times in a row is a store fault
_CLAIM_ATTEMPTS = 5


class _Session:
    """The connection one task's `PostgresStore.session` holds, checked out at first use."""

    def __init__(self, store: PostgresStore, task: asyncio.Task[Any] | None) -> None:
        self.store = store
        self.task = task
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None
        #: (u_id, account_id, run_id) of the claims `write_sync_logs` released in this session
        #: that `release_claim` has not yet been told of
        self.released: set[tuple[UUID, str, UUID]] = set()

    async def connection(
        self, pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]
    ) -> psycopg.AsyncConnection[Any]:
        if self._conn is None:
            self._conn = await pool.getconn()
            self._pool = pool
        return self._conn

    async def give_back(self) -> None:
        """Return the connection to its pool, which discards a broken one, rolls back one
        left mid-transaction and closes one left mid-query (psycopg_pool's putconn); never
        raises: each call made on it already succeeded or raised its own error."""
        pool, conn, self._pool, self._conn = self._pool, self._conn, None, None
        if pool is not None and conn is not None:
            try:
                await pool.putconn(conn)
            except psycopg.Error as exc:
                log.debug("a session's connection went back to its pool with %r", exc)


#: the session of the running task (asyncio copies the context into each task it creates)
_SESSION: contextvars.ContextVar[_Session | None] = contextvars.ContextVar(
    "igsync_postgres_session", default=None
)
