"""The embedded default store: one SQLite file, owner-only, WAL, upserts verified by SQLite's
own change counter.

Opening a file brings its schema up to date: one query reads the version record, and pending
migrations (schema.py) run one transaction each under SQLite's write lock (`begin immediate`),
so a second process opening the same old file waits, then finds them applied.

Calls are synchronous inside async methods on purpose: a local write of a few hundred rows
takes milliseconds, and sqlite3 connections belong to the thread that made them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sqlite3
import stat
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Iterator, Sequence
from datetime import UTC, date, datetime
from operator import attrgetter
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote
from uuid import UUID

from igsync.errors import (
    ConfigError,
    NotADatabaseError,
    StoreConfigError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from igsync.models import (
    AccountClaim,
    InsightRow,
    SyncLog,
    TokenRow,
    TokenUpdate,
    UserToken,
    as_utc,
)
from igsync.redact import redact, register_secret
from igsync.store import SYNC_LOG_PAGE, SYNC_LOG_SCAN, Access, AccountKey
from igsync.store.postgres_sql import SYNC_LOG_COLUMNS
from igsync.store.schema import LATEST, MIGRATIONS, V1_TABLES, VERSION_TABLE, step_sql
from igsync.store.streaming import STREAM_BATCH, RowFilter, select_sql
from igsync.store.tables import (
    INSIGHTS,
    UPSERTED,
    Keyed,
    PgType,
    Row,
    Table,
    TableRows,
    dedupe_by_key,
)
from igsync.store.token_rows import token_row
from igsync.token_crypto import holds, seal

log = logging.getLogger(__name__)


def _upsert_sql(table: Table[Any]) -> str:
    """`insert … values (?, …) on conflict (key) do update …`: a row's columns, then the stamp."""
    columns = ", ".join((*table.names, table.stamp))
    marks = ", ".join("?" * (len(table.names) + 1))
    sql = f"insert into {table.name} ({columns}) values ({marks})"  # noqa: S608 - constant names
    return f"{sql}\n{table.on_conflict()}"


_UPSERTS = {table.name: _upsert_sql(table) for table in UPSERTED}

# A row's values as SQLite stores them (schema.py: ISO-8601 text in UTC, YYYY-MM-DD, JSON text).
_TO_SQLITE: dict[PgType, Callable[[Any], Any]] = {
    "uuid": lambda v: None if v is None else str(v),
    "text": lambda v: v,
    "date": lambda v: None if v is None else v.isoformat(),
    "timestamptz": lambda v: None if v is None else as_utc(v).isoformat(),
    "int8": lambda v: v,
    "jsonb": lambda v: None if v is None else json.dumps(v),
}

_TOKEN_COLUMNS = (
    "token_id, u_id, platform, access_token, account_id, expires_at, token_kind, status,"
    " last_refreshed_at, created_at, updated_at"
)
# Insert, or replace in place: token_id and created_at of a replaced row survive.
_SAVE_TOKEN = (
    f"insert into user_tokens ({_TOKEN_COLUMNS})"  # noqa: S608 - constant columns
    " values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " on conflict (u_id, platform, account_id) do update set"
    " access_token = excluded.access_token, expires_at = excluded.expires_at,"
    " token_kind = excluded.token_kind, status = excluded.status,"
    " last_refreshed_at = excluded.last_refreshed_at,"
    " updated_at = excluded.updated_at"
)


def _token_values(token: UserToken, now: str) -> tuple[str | None, ...]:
    """The parameters of _SAVE_TOKEN; `now` (ISO text) stamps updated_at."""
    return (
        str(token.token_id),
        str(token.u_id),
        token.platform,
        seal(token.access_token.get_secret_value()),
        token.account_id,
        _ts(token.expires_at),
        token.token_kind,
        token.status,
        _ts(token.last_refreshed_at),
        _ts(token.created_at) or now,
        now,
    )


#: seconds a write waits for another process's write lock (sqlite3's timeout, busy_timeout)
BUSY_TIMEOUT_S: float = 30

# SQLite's primary result codes (https://www.sqlite.org/rescode.html) that say the file, not
# one statement, is at fault. SQLITE_FULL is not among them: a full disk fails one write while
# a smaller one, or one after a checkpoint freed pages, may still pass.
_BUSY, _PERM, _READONLY, _IOERR, _CORRUPT, _CANTOPEN, _NOTADB = 5, 3, 8, 10, 11, 14, 26
_DAMAGED = frozenset({_CORRUPT, _NOTADB})
_NOT_WRITABLE = frozenset({_PERM, _READONLY, _CANTOPEN})
_GONE = frozenset({_BUSY, _IOERR}) | _NOT_WRITABLE


def _primary_code(exc: sqlite3.Error) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+: the extended code
    return code & 0xFF if isinstance(code, int) else None


# The file format (https://www.sqlite.org/fileformat.html): every database starts with this
# header string, its size is a whole number of pages (512 bytes at least, a power of two), and
# page 1 holds the sqlite_schema b-tree, whose page header starts at byte 100 with its type:
# 0x0D a leaf, 0x05 an interior table page.
_SQLITE_HEADER = b"SQLite format 3\x00"
_MIN_PAGE = 512
_SCHEMA_PAGE_TYPES = frozenset({0x05, 0x0D})
_SCHEMA_PAGE_TYPE_AT = 100


def _not_sqlite(path: Path) -> bool:
    """True when `path` is another kind of file (an HTML page, a CSV), not a damaged database:
    it lacks SQLite's header string, and is not a database whose header alone was overwritten
    (whole pages, a sqlite_schema page header at byte 100). Unreadable: False (cannot tell)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as file:
            start = file.read(_SCHEMA_PAGE_TYPE_AT + 1)
    except OSError:
        return False
    if start.startswith(_SQLITE_HEADER):
        return False
    whole_pages = size >= _MIN_PAGE and size % _MIN_PAGE == 0
    schema_page = len(start) > _SCHEMA_PAGE_TYPE_AT and start[_SCHEMA_PAGE_TYPE_AT] in (
        _SCHEMA_PAGE_TYPES
    )
    return not (whole_pages and schema_page)


def _damaged_error(path: Path, exc: sqlite3.Error) -> StoreCorruptError:
    """What to say when SQLite finds `path` damaged: stop, check, restore."""
    return StoreCorruptError(
        f"SQLite database {path} is damaged ({redact(str(exc))}): stop writing to it, run"
        " `igsync db check` to see what is damaged, and restore it from a backup"
    )


def _failure(path: Path, action: str, exc: sqlite3.Error) -> StoreError:
    """The StoreError for one failed call: StoreCorruptError or StoreUnavailableError when the
    file itself is at fault (every later call would fail too), else this call's failure.

    A lock held past BUSY_TIMEOUT_S counts as the file being gone: the next write would wait
    as long again, and the next.
    """
    code = _primary_code(exc)
    text = redact(str(exc))
    if code in _DAMAGED:
        return _damaged_error(path, exc)
    if code == _BUSY:
        return StoreUnavailableError(
            f"SQLite database {path} stayed locked by another process for over"
            f" {BUSY_TIMEOUT_S} s ({text}); find the process holding it, then run again"
        )
    if code in _NOT_WRITABLE:
        return StoreUnavailableError(
            f"SQLite database {path} cannot be written any more ({text}); make the file and"
            " its directory writable by this user, then run again"
        )
    if code in _GONE:
        return StoreUnavailableError(
            f"SQLite database {path} stopped answering ({text}); check the disk, then run"
            " `igsync db check`"
        )
    return StoreError(f"SQLite{action}: {text}")


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back after a failed statement; on a failing disk the rollback may fail too, and
    the error to report is the first one (SQLite rolls back a hot journal on next open)."""
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("rollback")


def _ts(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def _statements(script: str) -> Iterator[str]:
    """A script's statements one at a time: `executescript` would commit the open transaction
    first, and a migration must run inside one."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    if statement.strip():
        yield statement  # trailing comments, or a last statement without its `;`


def _recorded_version(conn: sqlite3.Connection) -> int | None:
    """The newest migration in the version record (0 if empty); None without a record."""
    try:
        row = conn.execute(f"select max(version) from {VERSION_TABLE}").fetchone()  # noqa: S608 - constant name
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return int(row[0] or 0)


def _schema_version(conn: sqlite3.Connection) -> int:
    """The schema version of the database: its record, else 1 when migration 1's tables are
    all there (igsync before migrations), else 0."""
    recorded = _recorded_version(conn)
    if recorded is not None:
        return recorded
    tables = {r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")}
    return 1 if tables.issuperset(V1_TABLES) else 0


def _migrate(conn: sqlite3.Connection) -> None:
    """Apply every pending migration, each in one transaction holding the write lock."""
    for migration in MIGRATIONS:
        conn.execute("begin immediate")
        try:
            # Read under the lock: another process may have applied it while this one waited.
            current = _schema_version(conn)
            if current < migration.version:
                for statement in _statements(step_sql(migration, current, "sqlite")):
                    conn.execute(statement)
            conn.execute("commit")
        except BaseException:
            if conn.in_transaction:
                conn.execute("rollback")
            raise


def _missing_error(path: Path) -> ConfigError:
    """What to say when a command that only reads finds no file at `path` (a mistyped --db)."""
    return ConfigError(
        f"no SQLite database at {path}: check --db / IGSYNC_DATABASE_URL, or create it with"
        " `igsync db init` or a first `igsync fetch`"
    )


def _owner_only(path: Path, access: Access = "create") -> None:
    """Create the parent dir (0700) and the file (0600) before SQLite opens it; for `write`
    or `read` access only check the file is there (ConfigError when not), creating nothing."""
    create = access == "create"
    if create and not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    flags = os.O_RDONLY if access == "read" else os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        if create:
            raise
        raise _missing_error(path) from None
    os.close(fd)


def _writable(path: Path) -> bool:
    """Whether this user may write `path` and create its WAL files beside it."""
    # effective ids: what the kernel checks on open, for a setuid or seteuid process too
    effective = os.access in os.supports_effective_ids
    return all(os.access(p, os.W_OK, effective_ids=effective) for p in (path, path.parent))


def _read_target(path: Path) -> str:
    """The URI that opens `path` for reading only. SQLite reads a WAL database through
    NAME-shm, which it creates beside the file unless it exists; a file no one may write
    (no write bit: 0444, 0440) cannot be changing, so it is opened immutable, needing no
    -shm: a read-only copy in a read-only directory reads too (sqlite.org/uri.html)."""
    target = f"file:{quote(str(path))}?mode=ro"
    if not stat.S_IMODE(os.stat(path).st_mode) & 0o222:
        target += "&immutable=1"
    return target


def _tighten(path: Path) -> None:
    """Take group and other permissions off an existing database (an existing file keeps
    its mode on open, and tokens live in here), never adding any: a file made read-only
    stays so. A file of another user's (a database shared through its group) is left as its
    owner set it, with a warning."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if not mode & 0o077:
        return
    try:
        os.chmod(path, mode & 0o700)
    except PermissionError:
        log.warning(
            "SQLite database %s is open to its group or others (mode %04o) and is not this"
            " user's to restrict; the tokens in it are as readable as the file",
            path,
            mode,
        )


class _Session:
    """The transaction of one `SQLiteStore.session()`: the task inside it, whether it has
    begun (at its first statement), and the error that lost it, if SQLite rolled it back."""

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        self.task = task
        self.began = False
        self.lost: sqlite3.Error | None = None

    def begin(self, conn: sqlite3.Connection) -> None:
        """Join the session's transaction, beginning it at the first statement; raises the
        error that lost it once SQLite rolled it back: a statement after that would commit
        on its own, outside the session."""
        if asyncio.current_task() is not self.task:
            # Its statements would land in this session's transaction, kept or lost with it.
            raise RuntimeError("a SQLite store call from another task inside a session")
        if self.began and not conn.in_transaction and self.lost is None:
            self.lost = sqlite3.OperationalError("the session's transaction was rolled back")
        if self.lost is not None:
            raise self.lost
        if not self.began:
            conn.execute("begin immediate")
            self.began = True

    def check(self, conn: sqlite3.Connection, exc: BaseException) -> None:
        """After a failed statement: a full disk, an I/O error or a lock timeout can make
        SQLite roll back the whole transaction (sqlite.org/lang_transaction.html, "Response
        To Errors Within A Transaction"); every write before it in the session is gone."""
        if self.began and not conn.in_transaction and self.lost is None:
            self.lost = exc if isinstance(exc, sqlite3.Error) else sqlite3.Error(str(exc))

    def undo(self, conn: sqlite3.Connection, exc: BaseException) -> None:
        """Undo the savepoint of one failed write, unless SQLite already undid it all."""
        self.check(conn, exc)
        if self.lost is None:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("rollback to igsync_write")
                conn.execute("release igsync_write")


class SQLiteStore(TableRows):
    """`Store` on a SQLite file (`:memory:` for tests)."""

    #: a session is one transaction: the accounts that ended while the last were written
    #: share its commit (`session`)
    write_group = 16

    def __init__(self, path: Path | str, *, access: Access = "create") -> None:
        """`access` (igsync.store.Access): `create` makes a missing file and its directory;
        with `write` or `read` a missing file is a ConfigError (exit 2) when the store is
        entered and nothing is created. `read` opens a file this user may not write (or not
        create its WAL files beside) read-only, SQLite's mode=ro, never migrating it: an older
        schema is then a StoreConfigError naming `igsync db init`; a writable one opens as
        `write` does."""
        self.path = Path(path)
        self.access = access
        self._conn: sqlite3.Connection | None = None
        self._session: _Session | None = None

    async def __aenter__(self) -> Self:
        self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            memory = str(self.path) == ":memory:"
            try:
                target: str | Path = self.path
                if not memory:
                    _owner_only(self.path, self.access)
                    if self.access == "read" and _writable(self.path):
                        # as any other command opens it: migrated, and its WAL files gone
                        # when it closes (a read-only connection leaves them behind)
                        self.access = "write"
                    if self.access == "write":
                        # mode=rw: SQLite itself never creates it, even if it vanished since
                        target = f"file:{quote(str(self.path))}?mode=rw"
                    elif self.access == "read":
                        target = _read_target(self.path)
                conn = sqlite3.connect(
                    target,
                    isolation_level=None,
                    timeout=BUSY_TIMEOUT_S,
                    uri=isinstance(target, str),
                )
                conn.execute(f"pragma busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                if not memory and self.access != "read":
                    conn.execute("pragma journal_mode = wal")
                conn.execute("pragma synchronous = normal")
                conn.execute("pragma foreign_keys = on")
                if not memory:
                    # Only once SQLite has read it as a database: a wrong --db (an HTML
                    # page) is left as it was.
                    _tighten(self.path)
            except OSError as exc:
                # A path that cannot hold a database is a setting to fix, not a failed run.
                raise ConfigError(
                    f"cannot open SQLite database {self.path}: {exc.strerror or exc}; "
                    "point --db or IGSYNC_DATABASE_URL at a writable file (sqlite:///path.db)"
                ) from None
            except sqlite3.Error as exc:
                raise self._open_failure(exc) from None
            try:
                # The embedded default just works: its tables exist from the first open on.
                self._ensure_schema(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        """Migrate the database to LATEST; a current one costs one query and no write lock.
        Opened for reading, an older schema is a StoreConfigError instead."""
        current: int | None = None
        try:
            recorded = _recorded_version(conn)
            if recorded is not None and recorded >= LATEST:
                return
            current = _schema_version(conn)
            if self.access == "read":
                raise StoreConfigError(
                    f"SQLite database {self.path} has the igsync schema at version {current},"
                    f" this igsync reads version {LATEST}: open it once with write access"
                    " (`igsync db init`) to migrate it"
                )
            _migrate(conn)
        except sqlite3.Error as exc:
            if _primary_code(exc) in _DAMAGED | _NOT_WRITABLE:
                raise self._open_failure(exc) from None
            if not current:
                raise StoreError(
                    f"cannot create the schema in SQLite database {self.path}: {exc}"
                ) from None
            raise StoreError(
                f"SQLite database {self.path} has the igsync schema at version {current}, this"
                f" igsync needs {LATEST}, and migrating it failed: {exc}; open it once with"
                " write access (`igsync db init`)"
            ) from None

    def _open_failure(self, exc: sqlite3.Error) -> StoreError:
        """Why the file cannot be opened: a read-only file or directory, or a file that is
        not a SQLite database (NotADatabaseError), is a setting to fix (StoreConfigError,
        exit 2); a damaged database StoreCorruptError."""
        code = _primary_code(exc)
        if code == _NOTADB and _not_sqlite(self.path):
            # SQLite checks the header as it opens: another kind of file is a wrong --db,
            # not a damaged database to restore
            return NotADatabaseError(
                f"{self.path} is not a SQLite database ({redact(str(exc))}); point --db or"
                " IGSYNC_DATABASE_URL at an igsync database (if this file was one, its"
                " header is damaged: restore it from a backup)"
            )
        if code in _DAMAGED:
            return _damaged_error(self.path, exc)
        if code in _NOT_WRITABLE and self.access == "read":
            name = self.path.name
            return StoreConfigError(
                f"SQLite database {self.path} cannot be read by this user ({redact(str(exc))}):"
                f" SQLite reads a WAL database through {name}-shm, which this user may not"
                " create beside it; let this user write the directory, or read a copy no one"
                " may write (`chmod a-w`: read as it is, with no -shm)"
            )
        if code in _NOT_WRITABLE:
            name = self.path.name
            return StoreConfigError(
                f"SQLite database {self.path} is read-only for this user ({redact(str(exc))}):"
                " make the file and its directory writable by this user (SQLite creates"
                f" {name}-wal and {name}-shm beside it), or point --db or IGSYNC_DATABASE_URL"
                " at a writable file (sqlite:///path.db)"
            )
        return StoreError(f"cannot open SQLite database {self.path}: {redact(str(exc))}")

    def _run(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        conn = self._connect()
        try:
            if self._session is not None:
                self._session.begin(conn)
            return conn.execute(sql, params)
        except sqlite3.Error as exc:
            if self._session is not None:
                self._session.check(conn, exc)
            raise _failure(self.path, "", exc) from None

    @contextlib.contextmanager
    def _atomic(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write, all or nothing: a transaction of its own holding the write lock, or
        inside a session a savepoint of the session's transaction. Anything raised inside
        undoes it and goes on up (sqlite3.Error for the caller to turn into a StoreError)."""
        session = self._session
        if session is None:
            conn.execute("begin immediate")
            try:
                yield
            except BaseException:
                _rollback(conn)
                raise
            conn.execute("commit")
            return
        try:
            session.begin(conn)
            conn.execute("savepoint igsync_write")
        except sqlite3.Error as exc:
            session.check(conn, exc)
            raise
        try:
            yield
        except BaseException as exc:
            session.undo(conn, exc)
            raise
        conn.execute("release igsync_write")

    async def init_schema(self) -> None:
        """Bring the schema to LATEST (opening already does); nothing to do when current.

        Raises StoreError when a migration fails (a read-only file, a full disk).
        """
        self._ensure_schema(self._connect())

    async def upsert_insights(self, rows: Sequence[InsightRow]) -> int:
        fetched_at = datetime.now(UTC).isoformat(timespec="seconds")
        # _upsert's work by hand on the hot path: dedupe_by_key's rule (one row per key, last
        # wins, first-seen order) applied to the parameter tuples in the same pass that builds
        # them; a batch holds few users and days, so their text forms are made once each.
        # Together 3-4x faster than dedupe_by_key plus a list comprehension, which cost as
        # much as SQLite's own work.
        uid_text: dict[UUID, str] = {}
        time_text: dict[datetime, str] = {}
        date_text: dict[date, str] = {}
        latest: dict[tuple[str, str, str, str], tuple[Any, ...]] = {}
        for r in rows:
            if (uid := uid_text.get(r.u_id)) is None:
                uid = uid_text[r.u_id] = str(r.u_id)
            if (end_time := time_text.get(r.end_time)) is None:
                end_time = time_text[r.end_time] = as_utc(r.end_time).isoformat()
            if (day := r.local_date) is None:
                local_date = None
            elif (local_date := date_text.get(day)) is None:
                local_date = date_text[day] = day.isoformat()
            latest[(uid, r.account_id, r.metric, end_time)] = (
                uid,
                r.account_id,
                r.metric,
                r.metric_type,
                r.period,
                end_time,
                local_date,
                r.value,
                None if r.value_json is None else json.dumps(r.value_json),
                fetched_at,
            )
        return self._write(INSIGHTS, list(latest.values()))

    async def _upsert(self, table: Table[Any], rows: Sequence[Keyed]) -> int:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        values = attrgetter(*table.names)
        convert = [_TO_SQLITE[kind] for kind in table.types]
        batch = [
            (*(to(v) for to, v in zip(convert, values(r), strict=True)), stamp)
            for r in dedupe_by_key(rows)
        ]
        return self._write(table, batch)

    def _write(self, table: Table[Any], batch: list[tuple[Any, ...]]) -> int:
        """Upsert parameter tuples (a row's columns, then the stamp; distinct keys) in one
        transaction, verified: SQLite counts one change per row inserted or updated. Raises
        StoreError, nothing written, when its count differs or SQLite refuses a row (SQLite's
        messages name the constraint, never the row's values)."""
        if not batch:
            return 0
        conn = self._connect()
        try:
            with self._atomic(conn):
                before = conn.total_changes
                conn.executemany(_UPSERTS[table.name], batch)
                confirmed = conn.total_changes - before
                if confirmed != len(batch):
                    raise StoreError(
                        f"SQLite confirmed {confirmed} of {len(batch)} {table.noun};"
                        " nothing written"
                    )
        except sqlite3.Error as exc:
            raise _failure(self.path, " upsert failed", exc) from None
        return confirmed

    async def _read(
        self, table: Table[Row], u_id: UUID | None, account_id: str | None
    ) -> list[Row]:
        sql = (
            f"select {', '.join(table.names)} from {table.name}"  # noqa: S608 - constant names
            " where (? is null or u_id = ?) and (? is null or account_id = ?)"
            f" order by {', '.join(table.order)}"
        )
        uid = None if u_id is None else str(u_id)
        cursor = self._run(sql, (uid, uid, account_id, account_id))
        # pydantic reads the ISO texts and uuids back; only JSON is parsed here.
        json_columns = {name for name, kind in table.columns if kind == "jsonb"}
        return [
            table.model.model_validate(
                {
                    name: json.loads(v) if name in json_columns and v is not None else v
                    for name, v in zip(table.names, r, strict=True)
                }
            )
            for r in cursor.fetchall()
        ]

    async def list_tokens(
        self, *, u_id: UUID | None = None, platform: str = "instagram"
    ) -> list[TokenRow]:
        uid = None if u_id is None else str(u_id)
        return self._tokens(
            " where platform = ? and (? is null or u_id = ?) order by u_id, account_id",
            (platform, uid, uid),
        )

    async def token_page(
        self, *, after: UUID | str | None, limit: int, platform: str = "instagram"
    ) -> list[TokenRow]:
        start = None if after is None else str(after)
        return self._tokens(
            " where platform = ? and (? is null or token_id > ?) order by token_id limit ?",
            (platform, start, start, limit),
        )

    def _tokens(self, where: str, params: tuple[object, ...]) -> list[TokenRow]:
        cursor = self._run(f"select {_TOKEN_COLUMNS} from user_tokens{where}", params)  # noqa: S608 - constant SQL
        names = [c[0] for c in cursor.description]
        # SQLite keeps whatever the app wrote (text in a uuid or timestamp column): each row
        # is judged on its own (issue 11)
        return [token_row(dict(zip(names, r, strict=True))) for r in cursor.fetchall()]

    async def save_token(self, token: UserToken) -> None:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        conn = self._connect()
        try:
            with self._atomic(conn):
                conn.execute("insert or ignore into users (u_id) values (?)", (str(token.u_id),))
                conn.execute(_SAVE_TOKEN, _token_values(token, now))
        except sqlite3.Error as exc:
            raise _failure(self.path, " could not save the token", exc) from None

    async def update_token(self, token_id: UUID, expected: str, update: TokenUpdate) -> bool:
        new_token = update.access_token.get_secret_value() if update.access_token else None
        # The swap compares the stored value read here: an encrypted token differs from the
        # token it holds (token_crypto.py), and any write in between changes that value.
        found = self._run(
            "select access_token from user_tokens where token_id = ?", (str(token_id),)
        ).fetchone()
        if found is None or not holds(found[0], expected):
            return False
        cursor = self._run(
            "update user_tokens set access_token = coalesce(?, access_token), expires_at = ?,"
            " status = ?, last_refreshed_at = ?, updated_at = ?"
            " where token_id = ? and access_token = ?",
            (
                None if new_token is None else seal(new_token),
                _ts(update.expires_at),
                update.status,
                _ts(update.last_refreshed_at),
                datetime.now(UTC).isoformat(timespec="seconds"),
                str(token_id),
                found[0],
            ),
        )
        if new_token:
            register_secret(new_token)
        return cursor.rowcount == 1

    async def delete_tokens(self, u_id: UUID, *, account_id: str | None = None) -> int:
        cursor = self._run(
            "delete from user_tokens where platform = 'instagram' and u_id = ?"
            " and (? is null or account_id = ?)",
            (str(u_id), account_id, account_id),
        )
        return cursor.rowcount

    async def write_sync_logs(self, entries: Sequence[SyncLog]) -> None:
        if not entries:
            return
        conn = self._connect()
        try:
            with self._atomic(conn):
                conn.executemany(
                    "insert into instagram_sync_logs (run_id, u_id, account_id, started_at,"
                    " finished_at, status, total_inserted, total_errors, errors,"
                    " token_refreshed, streams) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            str(e.run_id),
                            None if e.u_id is None else str(e.u_id),
                            e.account_id,
                            _ts(e.started_at),
                            _ts(e.finished_at),
                            e.status,
                            e.total_inserted,
                            e.total_errors,
                            json.dumps([redact(m) for m in e.errors]),
                            int(e.token_refreshed),
                            json.dumps(e.streams),
                        )
                        for e in entries
                    ],
                )
        except sqlite3.Error as exc:
            raise _failure(self.path, "", exc) from None

    async def save_tokens(self, tokens: Sequence[UserToken]) -> int:
        batch = list({(t.u_id, t.platform, t.account_id): t for t in tokens}.values())
        if not batch:
            return 0
        now = datetime.now(UTC).isoformat(timespec="seconds")
        conn = self._connect()
        try:
            with self._atomic(conn):
                conn.executemany(
                    "insert or ignore into users (u_id) values (?)",
                    [(u,) for u in dict.fromkeys(str(t.u_id) for t in batch)],
                )
                conn.executemany(_SAVE_TOKEN, [_token_values(t, now) for t in batch])
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite could not save the tokens: {redact(str(exc))}") from None
        return len(batch)

    async def stream_rows(
        self,
        table: Table[Row],
        *,
        rows: RowFilter | None = None,
        order: Sequence[str] | None = None,
    ) -> AsyncGenerator[Row, None]:
        sql, params = select_sql(table, rows or RowFilter(), order, "sqlite")
        cursor = self._run(sql, params)
        json_at = [i for i, kind in enumerate(table.types) if kind == "jsonb"]
        names, validate = table.names, table.model.model_validate
        try:
            while True:
                try:
                    batch = cursor.fetchmany(STREAM_BATCH)
                except sqlite3.Error as exc:
                    raise StoreError(f"SQLite: {redact(str(exc))}") from None
                if not batch:
                    return
                for r in batch:
                    values = list(r)
                    for i in json_at:
                        if values[i] is not None:
                            values[i] = json.loads(values[i])
                    yield validate(dict(zip(names, values, strict=True)))
        finally:
            cursor.close()

    async def count_tokens(self, *, platform: str = "instagram") -> int:
        row = self._run("select count(*) from user_tokens where platform = ?", (platform,))
        return int(row.fetchone()[0])

    async def schema_version(self) -> int | None:
        try:
            return _recorded_version(self._connect())
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite: {redact(str(exc))}") from None

    async def latest_sync_logs(self, accounts: Collection[AccountKey]) -> dict[AccountKey, SyncLog]:
        wanted, found = set(accounts), dict[AccountKey, SyncLog]()
        before: int | None = None
        for _ in range(0, SYNC_LOG_SCAN, SYNC_LOG_PAGE):
            if not wanted - found.keys():
                break
            cursor = self._run(
                f"select {SYNC_LOG_COLUMNS} from instagram_sync_logs"  # noqa: S608 - constant
                " where u_id is not null and (? is null or id < ?) order by id desc limit ?",
                (before, before, SYNC_LOG_PAGE),
            )
            names = [c[0] for c in cursor.description]
            page = cursor.fetchall()
            for r in page:
                row = dict(zip(names, r, strict=True))
                key = (str(row["u_id"]), row["account_id"])
                if key in wanted and key not in found:  # others are not parsed: any text there
                    row["errors"] = json.loads(row["errors"])
                    row["streams"] = json.loads(row["streams"])
                    found[key] = SyncLog.model_validate(row)
            if len(page) < SYNC_LOG_PAGE:
                break
            before = page[-1][0]
        return found

    async def check_integrity(self, *, quick: bool = False) -> list[str]:
        """SQLite's own checks (https://www.sqlite.org/pragma.html#pragma_integrity_check):
        `integrity_check` reads every page and matches every index against its table
        (`quick`: `quick_check`, which skips the index matching and runs in O(N)), then
        `foreign_key_check`. At most 100 problems are listed. Raises StoreError when SQLite
        cannot run the check at all (it is locked, the disk fails)."""
        pragma = "quick_check" if quick else "integrity_check"
        conn = self._connect()
        try:
            rows = conn.execute(f"pragma {pragma}(100)").fetchall()
            broken = conn.execute("pragma foreign_key_check").fetchall()
        except sqlite3.Error as exc:
            if _primary_code(exc) in _DAMAGED:
                return [
                    f"{pragma} could not finish: {self.path} is damaged ({redact(str(exc))});"
                    " restore it from a backup"
                ]
            raise _failure(self.path, f" {pragma} failed", exc) from None
        problems = [f"{pragma}: {row[0]}" for row in rows if row[0] != "ok"]
        problems += [
            f"foreign_key_check: {table} row {rowid} refers to a row of {parent} that is missing"
            for table, rowid, parent, _ in broken
        ]
        return problems

    # --- account claims (igsync.claims): compare-and-swap under SQLite's write lock ---

    async def claim_accounts(
        self,
        keys: Sequence[tuple[UUID, str]],
        run_id: UUID,
        now: datetime,
        until: datetime,
        run_started: datetime,
    ) -> dict[tuple[UUID, str], AccountClaim]:
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        conn = self._connect()
        mine = (str(run_id), _claim_ts(now), _claim_ts(until), _claim_ts(run_started))
        try:
            # One transaction holding the write lock: every claim and the read of its holder
            # see the same rows, and a page of accounts costs one commit, not one each.
            with self._atomic(conn):
                conn.executemany(
                    "insert into igsync_claims (u_id, account_id, claimed_by, claimed_at,"
                    " claimed_until) values (?, ?, ?, ?, ?)"
                    " on conflict (u_id, account_id) do update set"
                    " claimed_by = excluded.claimed_by, claimed_at = excluded.claimed_at,"
                    " claimed_until = excluded.claimed_until, released_at = null"
                    " where case when igsync_claims.released_at is null"
                    " then igsync_claims.claimed_until <= excluded.claimed_at"
                    " else igsync_claims.released_at <= ? end",
                    [(str(u_id), account_id, *mine) for u_id, account_id in wanted],
                )
                read = "select claimed_by, claimed_until, released_at from igsync_claims"
                read += " where u_id = ? and account_id = ?"
                rows = [conn.execute(read, (str(u), a)).fetchone() for u, a in wanted]
        except sqlite3.Error as exc:
            raise _failure(self.path, " could not claim accounts", exc) from None
        claims = {}
        for key, (holder, claimed_until, released) in zip(wanted, rows, strict=True):
            claims[key] = AccountClaim(
                claimed=UUID(holder) == run_id and released is None,
                claimed_by=UUID(holder),
                claimed_until=datetime.fromisoformat(claimed_until),
                released_at=None if released is None else datetime.fromisoformat(released),
            )
        return claims

    async def renew_claims(self, run_id: UUID, until: datetime) -> int:
        cursor = self._run(
            "update igsync_claims set claimed_until = ?"
            " where claimed_by = ? and released_at is null",
            (_claim_ts(until), str(run_id)),
        )
        return cursor.rowcount

    async def release_claim(self, u_id: UUID, account_id: str, run_id: UUID, now: datetime) -> bool:
        cursor = self._run(
            "update igsync_claims set claimed_until = ?, released_at = ?"
            " where u_id = ? and account_id = ? and claimed_by = ? and released_at is null",
            (_claim_ts(now), _claim_ts(now), str(u_id), account_id, str(run_id)),
        )
        return cursor.rowcount == 1

    # --- sessions: one transaction for a task's writes ---

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[None]:
        """Within it, this task's calls share one transaction: begun at the first and
        committed at exit, instead of a commit each. A commit costs more than the writes of an
        account (benchmarks: 250 µs an account with one for its upserts, one for its sync log
        and one for its claim release; 90 µs with one for 8 accounts). See `Store.session`.

        Each write stays all or nothing on its own (a savepoint): one that fails rolls back
        alone and the next goes on. The body must make no call that waits (none of this
        store's does): another task's call inside it is a RuntimeError, since it would be
        kept or lost with this transaction. Raises StoreError at exit when the commit fails,
        or when SQLite rolled the transaction back after an error (a full disk): nothing
        written inside it was kept. Leaving by an exception rolls it back.
        """
        task = asyncio.current_task()
        if self._session is not None:
            if self._session.task is not task:
                raise RuntimeError("a SQLite session inside another task's session")
            yield  # nested: the outer session commits
            return
        session = self._session = _Session(task)
        try:
            yield
        except BaseException:
            if session.began and self._conn is not None:
                _rollback(self._conn)
            raise
        finally:
            self._session = None
        if not session.began or self._conn is None:
            return
        if session.lost is not None:
            # SQLite's error said why; the caller must hear that nothing of it was kept
            raise _failure(self.path, " rolled back every write of the session", session.lost)
        try:
            self._conn.execute("commit")
        except sqlite3.Error as exc:
            _rollback(self._conn)
            raise _failure(self.path, " commit failed", exc) from None


def _claim_ts(value: datetime) -> str:
    """A claim's time as text whose order is time order: UTC, always with microseconds."""
    return as_utc(value).isoformat(timespec="microseconds")
