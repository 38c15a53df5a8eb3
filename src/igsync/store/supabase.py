"""Supabase behind `Store`: supabase-py's async client over PostgREST (SUPABASE.md).

Each request is its own transaction, and a `return=minimal` write answers with an empty body
that proves nothing: every write ends in `.select(...)`, which makes supabase-py ask for
`return=representation`, and counts the rows that come back.
postgrest-py never retries a POST; upserts are idempotent, so stamina retries them here on 5xx
and connection errors (never 4xx). Other writes are resent only if they never left.

Opening reads the schema-version record (one GET): PostgREST cannot run DDL, so a schema behind
the version this igsync needs fails right there, with one line naming the migration to apply,
instead of a write failing later on a missing column.

Errors are one line from PostgREST's `code` and `message`: its `details` can hold PostgreSQL's
`Failing row contains (…)`, tokens included. No key in any repr, no URL in errors or logs (the
compare-and-swap filter carries the expected token in the query string).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection, Mapping, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar, cast
from uuid import UUID

import httpx
import stamina
from postgrest import APIError, APIResponse
from postgrest.types import CountMethod
from pydantic import BaseModel, SecretStr, ValidationError
from supabase import AsyncClient, AsyncClientOptions, acreate_client

from igsync.errors import SchemaMissingError, StoreConfigError, StoreError, StoreUnavailableError
from igsync.models import AccountClaim, SyncLog, TokenRow, TokenUpdate, UserToken, as_utc
from igsync.redact import redact, register_secret
from igsync.store import SYNC_LOG_SCAN, AccountKey
from igsync.store.schema import LATEST, VERSION_TABLE
from igsync.store.streaming import RowFilter, checked_order
from igsync.store.supabase_errors import (
    MISSING_SCHEMA,
    NO_TABLE_CODES,
    SCHEMA_HELP,
    RequestFailed,
    describe,
    retry_on,
    safe_line,
    schema_behind_help,
)
from igsync.store.tables import UPSERTED, Keyed, Row, Table, TableRows, dedupe_by_key
from igsync.store.token_rows import token_row
from igsync.token_crypto import holds, seal

#: rows per upsert request (one PostgREST request, one transaction)
CHUNK_ROWS = 500
#: rows per read; Supabase's default `max-rows` cuts longer answers silently
PAGE_ROWS = 1000
ATTEMPTS = 4

_TOKEN_KEY = "u_id,platform,account_id"
_TOKEN_CHANGES = ("access_token", "expires_at", "token_kind", "status", "last_refreshed_at")
# The columns igsync reads and writes: init_schema checks that each table has them.
_TABLES = {
    "users": "u_id",
    "user_tokens": f"token_id,{_TOKEN_KEY},created_at,updated_at,{','.join(_TOKEN_CHANGES)}",
    "instagram_sync_logs": "id,run_id,u_id,account_id,started_at,finished_at,status,"
    "total_inserted,total_errors,errors,token_refreshed,streams",
    **{t.name: ",".join(("id", *t.names, t.stamp)) for t in UPSERTED},
    "igsync_claims": "u_id,account_id,claimed_by,claimed_at,claimed_until,released_at",
}
#: a claim whose row other runs change this many times in a row is a store fault
_CLAIM_ATTEMPTS = 5
# The status of the last response in this task: postgrest's APIError does not carry it.
_last_status: ContextVar[int | None] = ContextVar("igsync_supabase_status", default=None)

Model = TypeVar("Model", bound=BaseModel)
Query = Callable[[AsyncClient], Awaitable[APIResponse]]


async def _remember_status(response: httpx.Response) -> None:
    _last_status.set(response.status_code)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _tokens(rows: list[dict[str, Any]]) -> list[TokenRow]:
    """`user_tokens` rows as models, each judged on its own (issue 11), each token registered
    as a secret as soon as it is read."""
    return [token_row(r) for r in rows]


def _rows(response: APIResponse) -> list[dict[str, Any]]:
    data: object = response.data
    return data if isinstance(data, list) and all(isinstance(r, dict) for r in data) else []


def _confirmed(response: APIResponse) -> int:
    """Rows the database sent back; `Content-Range`'s count, when present, must agree."""
    count = len(_rows(response))
    return count if response.count is None else min(count, response.count)


def _parse(model: type[Model], row: Mapping[str, Any], what: str) -> Model:
    try:
        return model.model_validate(row)
    except ValidationError as exc:
        fields = ", ".join(".".join(map(str, e["loc"])) for e in exc.errors(include_input=False))
        raise StoreError(f"Supabase returned {what} igsync cannot read ({fields})") from None


class SupabaseStore(TableRows):
    """`Store` on a Supabase project's REST API (service-role key for cron; `transport`: tests)."""

    def __init__(
        self,
        url: str,
        key: str | SecretStr,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self._key = key if isinstance(key, SecretStr) else SecretStr(key)
        register_secret(self._key.get_secret_value())
        self.url = url.rstrip("/")
        self._transport = transport
        self._timeout = timeout
        self._http: httpx.AsyncClient | None = None
        self._client: AsyncClient | None = None

    def __repr__(self) -> str:
        return f"SupabaseStore({self.url!r})"

    async def __aenter__(self) -> Self:
        if self._client is not None:
            return self
        http = httpx.AsyncClient(
            transport=self._transport,
            timeout=self._timeout,
            event_hooks={"response": [_remember_status]},
        )
        # Our own httpx client (supabase-py's passes deprecated arguments: warnings), closed by
        # us; postgrest's retries sleep for real and cover GETs only, stamina's cover all.
        options = AsyncClientOptions(
            httpx_client=http, postgrest_client_retry=False, auto_refresh_token=False
        )
        try:
            self._client = await acreate_client(self.url, self._key.get_secret_value(), options)
        except Exception as exc:  # supabase.SupabaseException: a malformed URL or key
            await http.aclose()
            raise StoreError(f"cannot set up the Supabase client: {safe_line(str(exc))}") from None
        self._http = http
        try:
            await self._check_schema()
        except StoreUnavailableError as exc:
            await self.__aexit__(None, None, None)
            # before any work, as PostgreSQL's "cannot connect": a setting to check (exit 2)
            raise StoreConfigError(str(exc)) from None
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._http = self._client = None

    async def _run(self, what: str, query: Query, *, idempotent: bool = True) -> APIResponse:
        if self._client is None:
            raise StoreError("the Supabase store is not open; use `async with store:`")
        client = self._client
        tries = 0
        try:
            async for attempt in stamina.retry_context(on=retry_on(idempotent), attempts=ATTEMPTS):
                with attempt:
                    tries += 1
                    return await self._send(what, query, client)
        except RequestFailed as exc:
            # Unanswered every time it was sent: the service is down, not this request
            # refused. One timeout of a write that is never resent proves less.
            if exc.unreachable and tries >= ATTEMPTS:
                raise StoreUnavailableError(
                    f"{exc} ({tries} attempts); check that the Supabase project is up and"
                    " reachable (SUPABASE_URL), then run again"
                ) from None
            raise
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _send(self, what: str, query: Query, client: AsyncClient) -> APIResponse:
        _last_status.set(None)
        try:
            return await query(client)
        except APIError as exc:
            status = _last_status.get()
            if status is None and str(exc.code).isdigit():
                status = int(str(exc.code))  # a non-JSON error page: the code is the status
            transient = status is not None and status >= 500
            raise RequestFailed(
                describe(what, exc, status), code=str(exc.code or status), transient=transient
            ) from None
        except httpx.TransportError as exc:
            unsent = isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout)
            message = f"Supabase could not {what}: cannot reach it ({type(exc).__name__})"
            raise RequestFailed(
                message, transient=True, sent=not unsent, unreachable=True
            ) from None
        except httpx.HTTPError as exc:
            raise RequestFailed(f"Supabase could not {what}: {type(exc).__name__}") from None

    async def _select_all(
        self, what: str, table: str, filters: Mapping[str, object], order: list[str]
    ) -> list[dict[str, Any]]:
        """Every row matching the `eq` filters (None: no filter), a page at a time, in order."""
        rows: list[dict[str, Any]] = []
        while True:

            def page(c: AsyncClient, start: int = len(rows)) -> Awaitable[APIResponse]:
                query = c.table(table).select(_TABLES[table], count=CountMethod.exact)
                for column, value in filters.items():
                    if value is not None:
                        query = query.eq(column, str(value))
                for column in order:
                    # PostgreSQL sorts NULLs last; the stores list tokens without account first.
                    query = query.order(column, nullsfirst=column == "account_id" or None)
                return query.range(start, start + PAGE_ROWS - 1).execute()

            response = await self._run(what, page)
            got = _rows(response)
            rows.extend(got)
            # count=exact gives the total; without it (a proxy dropped the header) an empty
            # page ends the read, so a server max-rows below PAGE_ROWS never cuts it short.
            if not got or (response.count is not None and len(rows) >= response.count):
                return rows

    async def _recorded_version(self) -> int | None:
        """The newest migration in the version record; None without a (visible) record."""

        def latest(c: AsyncClient) -> Awaitable[APIResponse]:
            query = c.table(VERSION_TABLE).select("version").order("version", desc=True)
            return query.limit(1).execute()

        try:
            rows = _rows(await self._run("check the schema version", latest))
        except RequestFailed as exc:
            if exc.code in NO_TABLE_CODES:
                return None
            raise
        version = rows[0].get("version") if rows else None
        return version if isinstance(version, int) else None

    async def _check_schema(self) -> None:
        """Raise SchemaMissingError, saying what to apply, unless the schema is at LATEST.

        A current (or newer) schema costs one GET. Without a version record, the tables tell
        a schema made before records existed (version 1) from none at all.
        """
        version = await self._recorded_version()
        if version is not None and version >= LATEST:
            return
        if version is None:

            def probe(c: AsyncClient) -> Awaitable[APIResponse]:
                return c.table("instagram_insights").select("id").limit(0).execute()

            try:
                await self._run("find table instagram_insights", probe)
                version = 1
            except RequestFailed as exc:
                if exc.code not in NO_TABLE_CODES:
                    raise
                raise SchemaMissingError(f"{SCHEMA_HELP} (the igsync tables are missing)") from None
        raise SchemaMissingError(schema_behind_help(version))

    async def init_schema(self) -> None:
        """Check that the schema is at LATEST with every table and column igsync uses.

        Creates nothing (PostgREST cannot): raises SchemaMissingError saying what SQL to apply,
        or StoreError when the check itself fails (a wrong key, an unreachable project).
        """
        await self._check_schema()
        for table, columns in _TABLES.items():

            def probe(c: AsyncClient, table: str = table, columns: str = columns) -> Any:
                return c.table(table).select(columns).limit(0).execute()

            try:
                await self._run(f"find table {table}", probe)
            except RequestFailed as exc:
                if exc.code not in MISSING_SCHEMA:
                    raise
                raise SchemaMissingError(f"{SCHEMA_HELP} ({exc})") from None

    async def _upsert(self, table: Table[Any], rows: Sequence[Keyed]) -> int:
        """Upsert `rows` (one per key, the last wins) in chunks of CHUNK_ROWS, each one request
        and one transaction, each verified by the rows PostgREST sends back.

        Raises StoreError when a chunk is refused or confirmed short; chunks confirmed before
        it stay written (the message says how many rows).
        """
        batch = dedupe_by_key(rows)
        stamp = _now()
        # pydantic's JSON form of a datetime ends in "Z"; PostgreSQL's own is "+00:00".
        times = [name for name, kind in table.columns if kind == "timestamptz"]
        confirmed = 0
        for start in range(0, len(batch), CHUNK_ROWS):
            chunk = [
                {
                    **cast(BaseModel, r).model_dump(mode="json"),  # every row type is a model
                    **{name: _ts(getattr(r, name)) for name in times},
                    table.stamp: stamp,
                }
                for r in batch[start : start + CHUNK_ROWS]
            ]

            def upsert(c: AsyncClient, chunk: list[dict[str, Any]] = chunk) -> Any:
                query = c.table(table.name).upsert(
                    chunk, on_conflict=",".join(table.key), count=CountMethod.exact
                )
                return query.select("id").execute()

            got = _confirmed(await self._run(f"upsert {table.noun}", upsert))
            if got != len(chunk):
                earlier = f"; {confirmed} rows of earlier chunks were written" if confirmed else ""
                raise StoreError(f"Supabase confirmed {got} of {len(chunk)} {table.noun}{earlier}")
            confirmed += got
        return confirmed

    async def _read(
        self, table: Table[Row], u_id: UUID | None, account_id: str | None
    ) -> list[Row]:
        """Rows of `table`, filtered by user and account (None: all), in `table.order`."""
        filters = {"u_id": u_id, "account_id": account_id}
        rows = await self._select_all(f"read {table.noun}", table.name, filters, list(table.order))
        return [_parse(table.model, r, table.noun) for r in rows]

    async def list_tokens(
        self, *, u_id: UUID | None = None, platform: str = "instagram"
    ) -> list[TokenRow]:
        filters = {"platform": platform, "u_id": u_id}
        rows = await self._select_all(
            "list tokens", "user_tokens", filters, ["u_id", "account_id", "token_id"]
        )
        return _tokens(rows)

    async def token_page(
        self, *, after: UUID | str | None, limit: int, platform: str = "instagram"
    ) -> list[TokenRow]:
        def page(c: AsyncClient) -> Awaitable[APIResponse]:
            query = c.table("user_tokens").select(_TABLES["user_tokens"]).eq("platform", platform)
            if after is not None:
                query = query.gt("token_id", str(after))
            return query.order("token_id").limit(limit).execute()

        return _tokens(_rows(await self._run("list tokens", page)))

    async def save_token(self, token: UserToken) -> None:
        # Insert if new, else update in place: a merge upsert would also overwrite token_id
        # and created_at, which must survive a replaced token (as in SQLite).
        secret = token.access_token.get_secret_value()
        register_secret(secret)
        now = _now()
        row = {
            **token.model_dump(mode="json"),
            **{k: _ts(getattr(token, k)) for k in ("expires_at", "last_refreshed_at")},
            **{"access_token": seal(secret), "created_at": _ts(token.created_at) or now},
            "updated_at": now,
        }

        def add_user(c: AsyncClient) -> Any:
            users = c.table("users").upsert(
                [{"u_id": row["u_id"]}], on_conflict="u_id", ignore_duplicates=True
            )
            return users.execute()

        def insert(c: AsyncClient) -> Any:
            tokens = c.table("user_tokens")
            query = tokens.upsert([row], on_conflict=_TOKEN_KEY, ignore_duplicates=True)
            return query.select("token_id").execute()

        def replace(c: AsyncClient) -> Any:
            changes = {k: row[k] for k in (*_TOKEN_CHANGES, "updated_at")}
            query = c.table("user_tokens").update(changes)
            query = query.eq("u_id", row["u_id"]).eq("platform", token.platform)
            if token.account_id is None:
                query = query.is_("account_id", None)
            else:
                query = query.eq("account_id", token.account_id)
            return query.select("token_id").execute()

        await self._run("add the user", add_user)
        if _confirmed(await self._run("save the token", insert)) == 1:
            return
        if _confirmed(await self._run("save the token", replace)) != 1:
            raise StoreError(
                f"Supabase confirmed no write of the token of user {token.u_id}"
                f" account {token.account_id}; nothing was saved"
            )

    async def update_token(self, token_id: UUID, expected: str, update: TokenUpdate) -> bool:
        register_secret(expected)
        changes = {
            **{k: _ts(getattr(update, k)) for k in ("expires_at", "last_refreshed_at")},
            "status": update.status,
            "updated_at": _now(),
        }
        if update.access_token is not None:
            new_token = update.access_token.get_secret_value()
            register_secret(new_token)
            changes["access_token"] = seal(new_token)

        # A compare-and-swap without the token in any URL (PostgREST filters are query
        # parameters, and Supabase logs request URLs): read the row, compare the token here,
        # then change the row only while its updated_at is the one read. Every update moves
        # updated_at (the schema's trigger), so a writer in between makes the swap miss.
        def read(c: AsyncClient) -> Any:
            query = c.table("user_tokens").select("access_token,updated_at")
            return query.eq("token_id", str(token_id)).execute()

        found = _rows(await self._run("read the token", read))
        if len(found) != 1 or not holds(found[0].get("access_token"), expected):
            return False
        seen = found[0].get("updated_at")

        def swap(c: AsyncClient) -> Any:
            query = c.table("user_tokens").update(changes).eq("token_id", str(token_id))
            query = query.eq("updated_at", seen) if seen else query.is_("updated_at", "null")
            return query.select("token_id").execute()

        return _confirmed(await self._run("update the token", swap, idempotent=False)) == 1

    async def delete_tokens(self, u_id: UUID, *, account_id: str | None = None) -> int:
        def delete(c: AsyncClient) -> Any:
            query = c.table("user_tokens").delete()
            query = query.eq("platform", "instagram").eq("u_id", str(u_id))
            if account_id is not None:
                query = query.eq("account_id", account_id)
            return query.select("token_id").execute()

        return _confirmed(await self._run("delete tokens", delete, idempotent=False))

    async def write_sync_logs(self, entries: Sequence[SyncLog]) -> None:
        if not entries:
            return
        rows = [
            {
                **entry.model_dump(mode="json"),
                **{k: _ts(getattr(entry, k)) for k in ("started_at", "finished_at")},
                "errors": [redact(e) for e in entry.errors],
            }
            for entry in entries
        ]

        def insert(c: AsyncClient) -> Any:
            # one request, so one statement: PostgREST writes all of the rows or none
            return c.table("instagram_sync_logs").insert(rows).select("id").execute()

        confirmed = _confirmed(await self._run("write the sync log", insert, idempotent=False))
        if confirmed != len(rows):
            raise StoreError(f"Supabase confirmed {confirmed} of {len(rows)} sync log rows")

    async def save_tokens(self, tokens: Sequence[UserToken]) -> int:
        batch = list({(t.u_id, t.platform, t.account_id): t for t in tokens}.values())
        if not batch:
            return 0
        now = _now()
        rows = []
        for token in batch:
            secret = token.access_token.get_secret_value()
            register_secret(secret)
            # token_id and created_at are left out: a new row gets the columns' defaults, a
            # replaced one keeps its own, as save_token's update in place does
            rows.append(
                {
                    "u_id": str(token.u_id),
                    "platform": token.platform,
                    "account_id": token.account_id,
                    "access_token": seal(secret),
                    "expires_at": _ts(token.expires_at),
                    "token_kind": token.token_kind,
                    "status": token.status,
                    "last_refreshed_at": _ts(token.last_refreshed_at),
                    "updated_at": now,
                }
            )
        users = [{"u_id": u} for u in dict.fromkeys(row["u_id"] for row in rows)]

        def add_users(c: AsyncClient) -> Any:
            query = c.table("users").upsert(users, on_conflict="u_id", ignore_duplicates=True)
            return query.execute()

        def upsert(c: AsyncClient) -> Any:
            query = c.table("user_tokens").upsert(rows, on_conflict=_TOKEN_KEY)
            return query.select("token_id").execute()

        await self._run("add the users", add_users)
        saved = _confirmed(await self._run("save the tokens", upsert))
        if saved != len(rows):
            raise StoreError(
                f"Supabase confirmed {saved} of {len(rows)} tokens written; run the import again"
            )
        return saved

    async def stream_rows(
        self,
        table: Table[Row],
        *,
        rows: RowFilter | None = None,
        order: Sequence[str] | None = None,
    ) -> AsyncGenerator[Row, None]:
        """PostgREST range pages of PAGE_ROWS, each one request; an empty page ends it (a
        server max-rows below PAGE_ROWS shortens pages, never the read). Text sorts in the
        database's collation here: Meta's ids are digits, which every collation orders alike."""
        conditions = (rows or RowFilter()).conditions(table)
        ordered = checked_order(table, order)
        operators = {"=": "eq", ">=": "gte", "<=": "lte"}
        start = 0
        while True:

            def page(c: AsyncClient, start: int = start) -> Awaitable[APIResponse]:
                query = c.table(table.name).select(",".join(table.names))
                for column, operator, value in conditions:
                    query = query.filter(column, operators[operator], str(value))
                for column in ordered:
                    query = query.order(column)
                return query.range(start, start + PAGE_ROWS - 1).execute()

            got = _rows(await self._run(f"read {table.noun}", page))
            if not got:
                return
            for r in got:
                yield _parse(table.model, r, table.noun)
            start += len(got)

    async def count_tokens(self, *, platform: str = "instagram") -> int:
        def count(c: AsyncClient) -> Awaitable[APIResponse]:
            query = c.table("user_tokens").select("token_id", count=CountMethod.exact)
            return query.eq("platform", platform).limit(1).execute()

        response = await self._run("count tokens", count)
        # Content-Range's total; without it (a proxy dropped it) the row seen says only "some"
        return response.count if response.count is not None else len(_rows(response))

    async def schema_version(self) -> int | None:
        return await self._recorded_version()

    async def latest_sync_logs(self, accounts: Collection[AccountKey]) -> dict[AccountKey, SyncLog]:
        wanted, found = set(accounts), dict[AccountKey, SyncLog]()
        seen = 0
        while seen < SYNC_LOG_SCAN and wanted - found.keys():

            def logs(c: AsyncClient, start: int = seen) -> Awaitable[APIResponse]:
                query = c.table("instagram_sync_logs").select(_TABLES["instagram_sync_logs"])
                return query.order("id", desc=True).range(start, start + PAGE_ROWS - 1).execute()

            rows = _rows(await self._run("read the sync logs", logs))
            if not rows:  # the end: a server max-rows below PAGE_ROWS only shortens pages
                break
            seen += len(rows)
            for row in rows:
                key = (str(row.get("u_id")), row.get("account_id"))
                if key in wanted and key not in found:
                    found[key] = _parse(SyncLog, row, "a sync log")
        return found

    async def check_integrity(self, *, quick: bool = False) -> list[str]:
        """What Supabase's API can show (`quick` changes nothing): the schema version and
        every table and column igsync uses (init_schema's checks). Indexes are not visible
        through PostgREST: `igsync --db postgresql://… db check` on the project's database
        URL checks those."""
        try:
            await self.init_schema()
        except SchemaMissingError as exc:
            return [str(exc)]
        return []

    # --- account claims (igsync.claims) ---

    async def claim_accounts(
        self,
        keys: Sequence[tuple[UUID, str]],
        run_id: UUID,
        now: datetime,
        until: datetime,
        run_started: datetime,
    ) -> dict[tuple[UUID, str], AccountClaim]:
        """Account by account (`_claim_account`, two to three requests each), all of them
        at once: PostgREST has no ON CONFLICT … WHERE, and a compare-and-swap over many rows
        in one request would need a SQL function (a migration of its own). When one fails,
        the first failure is raised once every request has ended, and the claims the others
        took stay in the table unknown to the caller: they expire at `until`.
        """
        wanted = list(dict.fromkeys(keys))
        got = await asyncio.gather(
            *(self._claim_account(*key, run_id, now, until, run_started) for key in wanted),
            return_exceptions=True,
        )
        claims: dict[tuple[UUID, str], AccountClaim] = {}
        for key, claim in zip(wanted, got, strict=True):
            if isinstance(claim, BaseException):
                raise claim
            claims[key] = claim
        return claims

    async def _claim_account(
        self,
        u_id: UUID,
        account_id: str,
        run_id: UUID,
        now: datetime,
        until: datetime,
        run_started: datetime,
    ) -> AccountClaim:
        # The token CAS's pattern over PostgREST, which has no ON CONFLICT … WHERE: insert the
        # claim unless one exists; else read it, and take it over (crashed, or released before
        # this run started) only while it still holds the holder and expiry read. Every step
        # is safe to resend: a step whose answer was lost shows up in the next read as this
        # run's own claim.
        key = {"u_id": str(u_id), "account_id": account_id}
        mine = {"claimed_by": str(run_id), "claimed_at": _ts(now), "claimed_until": _ts(until)}

        def insert(c: AsyncClient) -> Any:
            query = c.table("igsync_claims").upsert(
                [{**key, **mine}], on_conflict="u_id,account_id", ignore_duplicates=True
            )
            return query.select("claimed_by").execute()

        def read(c: AsyncClient) -> Any:
            query = c.table("igsync_claims").select("claimed_by,claimed_until,released_at")
            return query.eq("u_id", key["u_id"]).eq("account_id", account_id).execute()

        for _ in range(_CLAIM_ATTEMPTS):
            if _rows(await self._run("claim the account", insert)):
                return AccountClaim(claimed=True, claimed_by=run_id, claimed_until=until)
            found = _rows(await self._run("read the account's claim", read))
            if not found:
                continue  # deleted between the two requests: try to insert again
            held = found[0]
            released = held.get("released_at")
            claim = AccountClaim(
                claimed=str(held["claimed_by"]) == str(run_id) and released is None,
                claimed_by=UUID(str(held["claimed_by"])),
                claimed_until=datetime.fromisoformat(str(held["claimed_until"])),
                released_at=None if released is None else datetime.fromisoformat(str(released)),
            )
            if claim.claimed:
                return claim
            if claim.released_at is None and claim.claimed_until > as_utc(now):
                return claim  # another run is on it
            if claim.released_at is not None and claim.released_at > as_utc(run_started):
                return claim  # another run finished it while this one ran

            def take_over(c: AsyncClient, seen: dict[str, Any] = held) -> Any:
                query = c.table("igsync_claims").update({**mine, "released_at": None})
                query = query.eq("u_id", key["u_id"]).eq("account_id", account_id)
                query = query.eq("claimed_by", str(seen["claimed_by"]))
                query = query.eq("claimed_until", str(seen["claimed_until"]))
                return query.select("claimed_by").execute()

            if _rows(await self._run("take over a claim", take_over)):
                return AccountClaim(claimed=True, claimed_by=run_id, claimed_until=until)
        raise StoreError(
            f"Supabase could not claim account {account_id}: its claim changed"
            f" {_CLAIM_ATTEMPTS} times while igsync read it"
        )

    async def renew_claims(self, run_id: UUID, until: datetime) -> int:
        def renew(c: AsyncClient) -> Any:
            query = c.table("igsync_claims").update({"claimed_until": _ts(until)})
            query = query.eq("claimed_by", str(run_id)).is_("released_at", "null")
            return query.select("account_id").execute()

        return _confirmed(await self._run("renew claims", renew))

    async def release_claim(self, u_id: UUID, account_id: str, run_id: UUID, now: datetime) -> bool:
        def release(c: AsyncClient) -> Any:
            changes = {"claimed_until": _ts(now), "released_at": _ts(now)}
            query = c.table("igsync_claims").update(changes).eq("u_id", str(u_id))
            query = query.eq("account_id", account_id).eq("claimed_by", str(run_id))
            return query.is_("released_at", "null").select("account_id").execute()

        return _confirmed(await self._run("release a claim", release)) == 1
