"""A fake Supabase REST API (PostgREST) over one in-memory database, built on respx.

It checks what supabase-py really sends (SUPABASE.md): `/rest/v1/<table>`, the `apikey` and
`Authorization: Bearer` headers (a wrong key answers 401 as Supabase does), `on_conflict` and
`columns`, and the `Prefer` values; and answers the way PostgREST does: upsert, ignore or merge
on a unique key, `eq`/`is` filters, `select`, `order`, `limit`/`offset` capped by `max-rows`,
`return=representation` or an empty body, `Content-Range` with `count=exact`, errors as
`{code, message, details, hint}` with PostgreSQL's codes, messages and HTTP statuses, including
the `Failing row contains (…)` detail that prints whole rows.

Behind it is SQLite with igsync's SQLite schema (the mirror of the PostgreSQL one), so unique,
not-null, check and foreign-key constraints are real; each request is one transaction, as in
PostgREST. Values are converted the way PostgreSQL would: uuids canonical, timestamps to UTC,
dates checked, bigints checked, jsonb parsed, booleans as booleans.

Tests script failures with `inject(Fault(...))` and its shortcuts. The fake is also a store kit
for the contract suite: `open()` gives a new store on this database, `sql()` looks behind its
back, `drop_rows_silently()` makes it accept rows and skip them; `supabase_kit` builds one
for a kits table. Also a pytest plugin (`pytest_plugins = ["fake_postgrest"]`) with the
fixtures `fake_postgrest` and `supabase_store`. PYTEST_DONT_REWRITE: it asserts nothing, and
test modules import it before pytest could rewrite it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import httpx
import pytest
import respx

from igsync.store.schema import schema_sql
from igsync.store.supabase import SupabaseStore

SUPABASE_URL = "https://fake-project.supabase.co"
# A service-role key has this shape (a JWT); the fake only compares it.
SERVICE_KEY = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.fake-sig-42"
MAX_ROWS = 1000  # Supabase's default `max-rows`

UUIDS = {"u_id", "token_id", "run_id", "claimed_by"}
TIMESTAMPS = {
    "end_time",
    "fetched_at",
    "expires_at",
    "last_refreshed_at",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "applied_at",
    "timestamp",  # instagram_media: when the media was posted
    "claimed_at",
    "claimed_until",
    "released_at",
}
DATES = {"local_date", "captured_on"}
JSONB = {"value_json", "errors", "streams"}  # instagram_sync_logs.streams is jsonb too
BOOLEANS = {"token_refreshed"}
INTEGERS = {
    "id": "bigint",
    "value": "bigint",
    "like_count": "bigint",
    "comments_count": "bigint",
    "total_inserted": "integer",
    "total_errors": "integer",
    "version": "integer",
}
IDENTITY = {"id"}  # `generated always as identity`
DEFAULTS: dict[str, Callable[[], str]] = {"token_id": lambda: str(uuid4())}  # gen_random_uuid()


class PostgrestError(Exception):
    """An error PostgREST answers with: HTTP status and the JSON body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.details, self.hint = details, hint

    def response(self) -> httpx.Response:
        body = {"code": self.code, "details": self.details, "hint": self.hint}
        return httpx.Response(
            self.status,
            json={**body, "message": self.message},
            headers={"Proxy-Status": f"PostgREST; error={self.code}"},
        )


def postgrest_error(code: str, message: str, details: str | None = None) -> PostgrestError:
    """An error with the status PostgREST gives that code (its pgErrorStatus)."""
    statuses = {"23503": 409, "23505": 409, "42P01": 404, "21000": 500, "42501": 403}
    status = statuses.get(code, 503 if code.startswith(("08", "53")) else 400)
    return PostgrestError(status, code, message, details)


@dataclass
class Fault:
    """A scripted answer for the next `times` matching requests.

    `error` answers that status with PostgREST's JSON error body, `body` with a raw (non-JSON)
    body such as a proxy's page, `connect_error` raises httpx.ConnectError as if the server were
    down. `after_write` runs the request for real (the write commits) and then hands its
    response to this function: a lost or altered answer. `method` and `table` narrow which
    requests it hits.
    """

    status: int = 503
    error: dict[str, Any] | None = None
    body: str | None = None
    connect_error: bool = False
    after_write: Callable[[httpx.Response], httpx.Response] | None = None
    method: str | None = None
    table: str | None = None
    times: int = 1
    #: let this many matching requests through first
    skip: int = 0

    def matches(self, request: httpx.Request, table: str) -> bool:
        return self.method in (None, request.method) and self.table in (None, table)


def empty_body(response: httpx.Response) -> httpx.Response:
    """What a `return=minimal` answer looks like: 201 and nothing, whatever was asked."""
    return httpx.Response(201 if response.is_success else response.status_code)


def one_row_short(response: httpx.Response) -> httpx.Response:
    """The representation without its last row (and a Content-Range that agrees)."""
    rows = response.json()[:-1]
    return httpx.Response(
        response.status_code, json=rows, headers={"Content-Range": f"*/{len(rows)}"}
    )


def failing_row(values: list[Any]) -> str:
    shown = ["null" if v is None else str(v) for v in values]
    return f"Failing row contains ({', '.join(shown)})."


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


class FakePostgrest:
    """One Supabase project: its REST API on respx, its database in memory."""

    def __init__(
        self,
        *,
        url: str = SUPABASE_URL,
        key: str = SERVICE_KEY,
        max_rows: int = MAX_ROWS,
        with_schema: bool = True,
    ) -> None:
        self.url, self.key, self.max_rows = url, key, max_rows
        self.db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.db.execute("pragma foreign_keys = on")
        if with_schema:
            self.db.executescript(schema_sql("sqlite"))
        self.faults: list[Fault] = []
        self.router = respx.MockRouter(assert_all_called=False)
        self.router.route(
            host=httpx.URL(url).host, path__regex=r"^/rest/v1/(?P<table>[A-Za-z_]\w*)$"
        ).mock(side_effect=self._answer)

    # --- for tests ---

    @property
    def requests(self) -> list[httpx.Request]:
        return [call.request for call in self.router.calls]

    def forget_requests(self) -> None:
        """Start `requests` afresh (e.g. after the version check a store makes on open)."""
        self.router.reset()

    def transport(self) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(self.router.async_handler)

    def open(self, key: str | None = None) -> SupabaseStore:
        """A new, unopened store on this database (`key`: another key than the right one)."""
        return SupabaseStore(self.url, key or self.key, transport=self.transport())

    def inject(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def fail(
        self,
        status: int = 503,
        code: str = "PGRST000",
        message: str = "Database connection error. Retrying the connection.",
        details: str | None = None,
        **where: Any,
    ) -> Fault:
        error = {"code": code, "message": message, "details": details, "hint": None}
        return self.inject(Fault(status=status, error=error, **where))

    def fail_connection(self, **where: Any) -> Fault:
        return self.inject(Fault(connect_error=True, **where))

    def answer_empty(self, **where: Any) -> Fault:
        return self.inject(Fault(after_write=empty_body, **where))

    def answer_one_row_short(self, **where: Any) -> Fault:
        return self.inject(Fault(after_write=one_row_short, **where))

    async def sql(self, query: str) -> list[tuple[Any, ...]]:
        """Plain SQL on the database behind the API's back (the contract suite's kit)."""
        return self.db.execute(query).fetchall()

    async def drop_rows_silently(self, account_id: str, table: str = "instagram_insights") -> None:
        """A trigger that skips inserts for `account_id`: PostgREST commits, returns fewer."""
        self.db.execute(
            f"create trigger drop_rows_{table} before insert on {table}"
            f" when new.account_id = '{account_id}' begin select raise(ignore); end"
        )

    def drop_table(self, table: str) -> None:
        self.db.execute(f"drop table {table}")

    def close(self) -> None:
        self.db.close()

    # --- the API ---

    def _answer(self, request: httpx.Request, table: str) -> httpx.Response:
        for fault in self.faults:
            if fault.times > 0 and fault.matches(request, table):
                if fault.skip > 0:
                    fault.skip -= 1
                    break
                fault.times -= 1
                if fault.connect_error:
                    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
                if fault.after_write is not None:
                    return fault.after_write(self._handle(request, table))
                if fault.body is not None:
                    return httpx.Response(fault.status, text=fault.body)
                return httpx.Response(fault.status, json=fault.error)
        return self._handle(request, table)

    def _handle(self, request: httpx.Request, table: str) -> httpx.Response:
        try:
            self._authorize(request)
            columns = self._columns(table)
            prefer = _prefer(request)
            if request.method == "GET":
                return self._select(request, table, columns, prefer)
            if request.method == "POST":
                return self._insert(request, table, columns, prefer)
            if request.method == "PATCH":
                return self._update(request, table, columns, prefer)
            if request.method == "DELETE":
                return self._delete(request, table, columns, prefer)
            raise PostgrestError(405, "PGRST117", f"Unsupported HTTP method: {request.method}")
        except PostgrestError as error:
            return error.response()

    def _authorize(self, request: httpx.Request) -> None:
        # The API gateway checks `apikey`; PostgREST checks the JWT in Authorization.
        if request.headers.get("apikey") != self.key:
            raise PostgrestError(
                401,
                "401",
                "Invalid API key",
                hint="Double check your Supabase `anon` or `service_role` API key.",
            )
        if request.headers.get("authorization") != f"Bearer {self.key}":
            raise PostgrestError(401, "PGRST301", "JWSError JWSInvalidSignature")
        for header in ("accept-profile", "content-profile"):
            if request.headers.get(header, "public") != "public":
                raise PostgrestError(
                    406, "PGRST106", "The schema must be one of the following: public"
                )

    def _columns(self, table: str) -> list[str]:
        columns = [row[1] for row in self.db.execute(f"pragma table_info({table})")]
        if not columns:
            raise PostgrestError(
                404, "PGRST205", f"Could not find the table 'public.{table}' in the schema cache"
            )
        return columns

    # reading

    def _select(
        self, request: httpx.Request, table: str, columns: list[str], prefer: dict[str, str]
    ) -> httpx.Response:
        params = request.url.params
        where, args = _where(request, table, columns)
        picked = _picked(params.get("select", "*"), table, columns)
        order = _order(params.get("order"), table, columns)
        offset = int(params.get("offset", "0"))
        limit = min(int(params.get("limit", str(self.max_rows))), self.max_rows)
        sql = f"select {', '.join(picked)} from {table}{where}{order} limit {limit} offset {offset}"
        rows = [_to_json(picked, row) for row in self.db.execute(sql, args)]
        total: int | None = None
        if prefer.get("count") == "exact":
            total = self.db.execute(f"select count(*) from {table}{where}", args).fetchone()[0]
            if offset > total:
                raise PostgrestError(416, "PGRST103", "Requested range not satisfiable")
        shown = f"{offset}-{offset + len(rows) - 1}" if rows else "*"
        content_range = f"{shown}/{'*' if total is None else total}"
        status = 206 if total is not None and len(rows) < total else 200
        return httpx.Response(status, json=rows, headers={"Content-Range": content_range})

    # writing

    def _insert(
        self, request: httpx.Request, table: str, columns: list[str], prefer: dict[str, str]
    ) -> httpx.Response:
        params = request.url.params
        body = json.loads(request.content)
        rows: list[dict[str, Any]] = body if isinstance(body, list) else [body]
        if "columns" in params:
            names = [name.strip('"') for name in params["columns"].split(",")]
        else:
            names = list(rows[0]) if rows else []
            if any(set(row) != set(names) for row in rows):
                raise PostgrestError(400, "PGRST102", "All object keys must match")
        for name in names:
            if name not in columns:
                raise PostgrestError(
                    400,
                    "PGRST204",
                    f"Could not find the '{name}' column of '{table}' in the schema cache",
                )
            if name in IDENTITY:
                raise PostgrestError(
                    400,
                    "428C9",
                    f'cannot insert a non-DEFAULT value into column "{name}"',
                    f'Column "{name}" is an identity column defined as GENERATED ALWAYS.',
                    "Use OVERRIDING SYSTEM VALUE to override.",
                )
        if prefer.get("missing") == "default":
            raise PostgrestError(400, "PGRST100", "the fake does not do Prefer: missing=default")
        # Columns left out get their default (rows missing a listed key get NULL).
        added = [name for name in DEFAULTS if name in columns and name not in names]
        conflict = ""
        resolution = prefer.get("resolution")
        if resolution in ("merge-duplicates", "ignore-duplicates"):
            keys = self._conflict_keys(table, params.get("on_conflict"))
            if resolution == "ignore-duplicates":
                conflict = f" on conflict ({', '.join(keys)}) do nothing"
            else:
                seen = [tuple(_value(k, row.get(k)) for k in keys) for row in rows]
                if len(set(seen)) < len(seen):
                    raise PostgrestError(
                        500,
                        "21000",
                        "ON CONFLICT DO UPDATE command cannot affect row a second time",
                        hint="Ensure that no rows proposed for insertion within the same"
                        " command have duplicate constrained values.",
                    )
                updates = ", ".join(f"{n} = excluded.{n}" for n in names)
                conflict = f" on conflict ({', '.join(keys)}) do update set {updates}"
        every = [*names, *added]
        sql = (
            f"insert into {table} ({', '.join(every)})"
            f" values ({', '.join('?' * len(every))}){conflict} returning *"
        )
        written = []
        self.db.execute("begin")
        try:
            for row in rows:
                args = [_value(n, row.get(n)) for n in names] + [DEFAULTS[n]() for n in added]
                written += self._write(
                    table, columns, sql, args, dict(zip(every, args, strict=True))
                )
            self.db.execute("commit")
        except BaseException:
            self.db.execute("rollback")
            raise
        return self._written(201, request, table, columns, prefer, written)

    def _update(
        self, request: httpx.Request, table: str, columns: list[str], prefer: dict[str, str]
    ) -> httpx.Response:
        changes = json.loads(request.content)
        if not isinstance(changes, dict):
            raise PostgrestError(400, "PGRST102", "Empty or invalid json")
        for name in changes:
            if name not in columns:
                raise PostgrestError(
                    400,
                    "PGRST204",
                    f"Could not find the '{name}' column of '{table}' in the schema cache",
                )
        where, args = _where(request, table, columns, needed="UPDATE")
        if table == "user_tokens":
            # The schema's igsync_touch_updated_at trigger: every update moves updated_at.
            changes["updated_at"] = datetime.now(UTC).isoformat()
        values = [_value(n, v) for n, v in changes.items()]
        sets = ", ".join(f"{name} = ?" for name in changes)
        before = self.db.execute(f"select * from {table}{where}", args).fetchone()
        row = dict(zip(columns, before or [], strict=False)) | dict(
            zip(changes, values, strict=True)
        )
        self.db.execute("begin")
        try:
            sql = f"update {table} set {sets}{where} returning *"
            written = self._write(table, columns, sql, [*values, *args], row)
            self.db.execute("commit")
        except BaseException:
            self.db.execute("rollback")
            raise
        return self._written(200, request, table, columns, prefer, written)

    def _delete(
        self, request: httpx.Request, table: str, columns: list[str], prefer: dict[str, str]
    ) -> httpx.Response:
        where, args = _where(request, table, columns, needed="DELETE")
        sql = f"delete from {table}{where} returning *"
        written = self.db.execute(sql, args).fetchall()
        return self._written(200, request, table, columns, prefer, written)

    def _write(
        self, table: str, columns: list[str], sql: str, args: list[Any], row: dict[str, Any]
    ) -> list[tuple[Any, ...]]:
        try:
            return self.db.execute(sql, args).fetchall()
        except sqlite3.IntegrityError as exc:
            raise _constraint_error(exc, table, columns, row) from None

    def _written(
        self,
        status: int,
        request: httpx.Request,
        table: str,
        columns: list[str],
        prefer: dict[str, str],
        written: list[tuple[Any, ...]],
    ) -> httpx.Response:
        count = str(len(written)) if prefer.get("count") == "exact" else "*"
        headers = {"Content-Range": f"*/{count}"}
        if prefer.get("return") != "representation":
            return httpx.Response(201 if status == 201 else 204, headers=headers)
        picked = _picked(request.url.params.get("select", "*"), table, columns)
        rows = [_to_json(columns, row) for row in written]
        return httpx.Response(
            status, json=[{k: row[k] for k in picked} for row in rows], headers=headers
        )

    def _conflict_keys(self, table: str, on_conflict: str | None) -> list[str]:
        """The columns of the unique constraint `on_conflict` names (the primary key if none)."""
        uniques = []
        for _, name, unique, origin, _ in self.db.execute(f"pragma index_list({table})"):
            if unique:
                keys = [r[2] for r in self.db.execute(f"pragma index_info({name})")]
                uniques.append((origin, keys))
        if on_conflict is None:
            return next(keys for origin, keys in uniques if origin == "pk")
        wanted = [c.strip() for c in on_conflict.split(",")]
        if not any(set(keys) == set(wanted) for _, keys in uniques):
            raise PostgrestError(
                400,
                "42P10",
                "there is no unique or exclusion constraint matching the ON CONFLICT specification",
            )
        return wanted


# --- request parsing and value conversion ---


def _prefer(request: httpx.Request) -> dict[str, str]:
    prefer = {}
    for header in request.headers.get_list("prefer"):
        for item in header.split(","):
            name, _, value = item.strip().partition("=")
            prefer[name] = value
    return prefer


def _column(name: str, table: str, columns: list[str]) -> str:
    if name not in columns:
        raise PostgrestError(400, "42703", f"column {table}.{name} does not exist")
    return name


def _picked(select: str, table: str, columns: list[str]) -> list[str]:
    if select.strip() == "*":
        return columns
    return [_column(name.strip(), table, columns) for name in select.split(",")]


def _order(order: str | None, table: str, columns: list[str]) -> str:
    if not order:
        return ""
    terms = []
    for term in order.split(","):
        name, *modifiers = term.split(".")
        direction = "desc" if "desc" in modifiers else "asc"
        # PostgreSQL puts NULLs last ascending and first descending, unless told.
        nulls = "first" if direction == "desc" else "last"
        if "nullsfirst" in modifiers:
            nulls = "first"
        if "nullslast" in modifiers:
            nulls = "last"
        terms.append(f"{_column(name, table, columns)} {direction} nulls {nulls}")
    return " order by " + ", ".join(terms)


_NOT_FILTERS = {"select", "order", "limit", "offset", "on_conflict", "columns"}
_OPERATORS = {"eq": "=", "neq": "<>", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _where(
    request: httpx.Request, table: str, columns: list[str], needed: str | None = None
) -> tuple[str, list[Any]]:
    clauses, args = [], []
    for name, condition in request.url.params.multi_items():
        if name in _NOT_FILTERS:
            continue
        operator, _, text = condition.partition(".")
        column = _column(name, table, columns)
        if operator == "is" and text in ("null", "true", "false"):
            clauses.append(f"{column} is {text}")
        elif operator in _OPERATORS:
            clauses.append(f"{column} {_OPERATORS[operator]} ?")
            args.append(_value(column, text, from_query=True))
        else:
            raise PostgrestError(
                400,
                "PGRST100",
                f'"failed to parse filter ({condition})" (line 1, column 1)',
            )
    if needed and not clauses:
        # Supabase loads pg-safeupdate: no UPDATE or DELETE without a WHERE clause.
        raise PostgrestError(400, "21000", f"{needed} requires a WHERE clause")
    return (" where " + " and ".join(clauses) if clauses else ""), args


def _value(column: str, value: Any, *, from_query: bool = False) -> Any:
    """A JSON (or query-string) value as PostgreSQL would store it, in SQLite's terms."""
    if value is None:
        return None
    if column in UUIDS:
        if not isinstance(value, str) or not _is_uuid(value):
            raise postgrest_error("22P02", f'invalid input syntax for type uuid: "{value}"')
        return str(UUID(value))
    if column in TIMESTAMPS:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            raise postgrest_error(
                "22007", f'invalid input syntax for type timestamp with time zone: "{value}"'
            ) from None
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
        return moment.astimezone(UTC).isoformat()
    if column in DATES:
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise postgrest_error(
                "22007", f'invalid input syntax for type date: "{value}"'
            ) from None
    if column in JSONB:
        return json.dumps(json.loads(value) if from_query else value)
    if column in BOOLEANS:
        if from_query and value in ("true", "false"):
            return int(value == "true")
        if not isinstance(value, bool):
            raise postgrest_error("22P02", f'invalid input syntax for type boolean: "{value}"')
        return int(value)
    if column in INTEGERS:
        if isinstance(value, bool) or not re.fullmatch(r"-?\d+", str(value)):
            kind = INTEGERS[column]
            raise postgrest_error("22P02", f'invalid input syntax for type {kind}: "{value}"')
        return int(value)
    return value if isinstance(value, str) else json.dumps(value)


def _to_json(columns: list[str], row: tuple[Any, ...]) -> dict[str, Any]:
    """A stored row as PostgREST's JSON shows it."""
    out: dict[str, Any] = {}
    for column, value in zip(columns, row, strict=True):
        if value is not None and column in JSONB:
            value = json.loads(value)
        elif value is not None and column in BOOLEANS:
            value = bool(value)
        out[column] = value
    return out


def _constraint_error(
    exc: sqlite3.IntegrityError, table: str, columns: list[str], row: dict[str, Any]
) -> PostgrestError:
    """SQLite's constraint error as PostgreSQL words it (its names, codes and details)."""
    kind = getattr(exc, "sqlite_errorname", "")
    text = str(exc)
    failing = failing_row([row.get(c) for c in columns])
    if kind in ("SQLITE_CONSTRAINT_UNIQUE", "SQLITE_CONSTRAINT_PRIMARYKEY"):
        keys = [k.split(".")[-1] for k in text.split(": ", 1)[1].split(", ")]
        name = f"{table}_pkey" if kind.endswith("PRIMARYKEY") else f"{table}_{'_'.join(keys)}_key"
        shown = ", ".join(str(row.get(k)) for k in keys)
        return postgrest_error(
            "23505",
            f'duplicate key value violates unique constraint "{name}"',
            f"Key ({', '.join(keys)})=({shown}) already exists.",
        )
    if kind == "SQLITE_CONSTRAINT_NOTNULL":
        column = text.rsplit(".", 1)[-1]
        return postgrest_error(
            "23502",
            f'null value in column "{column}" of relation "{table}" violates not-null constraint',
            failing,
        )
    if kind == "SQLITE_CONSTRAINT_CHECK":
        column = re.split(r"\W+", text.split(": ", 1)[1].strip())[0]
        return postgrest_error(
            "23514",
            f'new row for relation "{table}" violates check constraint "{table}_{column}_check"',
            failing,
        )
    if kind == "SQLITE_CONSTRAINT_FOREIGNKEY":
        return postgrest_error(
            "23503",
            f'insert or update on table "{table}" violates foreign key constraint'
            f' "{table}_u_id_fkey"',
            f'Key (u_id)=({row.get("u_id")}) is not present in table "users".',
        )
    return postgrest_error("23000", text)


# --- fixtures ---


def supabase_kit(request: pytest.FixtureRequest, tmp_path: object = None) -> FakePostgrest:
    """A fresh fake project, closed after the test (a store-kit factory for a contract suite)."""
    fake = FakePostgrest()
    request.addfinalizer(fake.close)
    return fake


@pytest.fixture
def fake_postgrest() -> Iterator[FakePostgrest]:
    """A fresh Supabase project with igsync's schema applied and no rows."""
    fake = FakePostgrest()
    yield fake
    fake.close()


@pytest.fixture
async def supabase_store(fake_postgrest: FakePostgrest) -> AsyncIterator[SupabaseStore]:
    """An open SupabaseStore on `fake_postgrest`, with the service-role key; `requests` holds
    only what was sent after opening."""
    async with fake_postgrest.open() as store:
        fake_postgrest.forget_requests()
        yield store
