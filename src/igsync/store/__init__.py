"""Storage behind one interface: the `Store` protocol and `open_store` for a database URL.

Knows nothing of HTTP to Meta. Every implementation upserts each table on its unique key
(tables.py) and verifies each batch (DESIGN.md §7), and checks the schema version when opened:
SQLite and PostgreSQL apply pending migrations (schema.py), Supabase says which to apply.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self
from uuid import UUID

from igsync.errors import ConfigError
from igsync.models import (
    AccountClaim,
    AudienceRow,
    InsightRow,
    MediaInsightRow,
    MediaRow,
    SyncLog,
    TokenRow,
    TokenUpdate,
    UserToken,
)
from igsync.store.streaming import RowFilter
from igsync.store.tables import Keyed, Row, Table, dedupe_by_key

__all__ = [
    "AccountKey",
    "Keyed",
    "Store",
    "dedupe_by_key",
    "iter_tokens",
    "open_store",
    "open_supabase_store",
]


class Store(Protocol):
    """What sync needs from a database. All methods are async; all stores share one test suite."""

    #: how many accounts' writes `sync_all` puts together: one `session()` (SQLite: one
    #: transaction, one commit; PostgreSQL: one connection) and one upsert per table and one
    #: `write_sync_logs` for all of them, a statement each rather than one per account (each
    #: statement costs the client more CPU than its rows). Supabase's requests wait on the
    #: network, so its accounts are written side by side, one each (1)
    write_group: int

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def init_schema(self) -> None:
        """Bring the schema to the version this igsync needs; safe to run twice.

        Opening a store already does; a current schema is left alone. Raises StoreError when
        the role may not run the DDL, and SchemaMissingError on Supabase (whose API cannot run
        DDL) when the schema is missing or behind; both messages say what SQL to apply.
        """

    async def upsert_insights(self, rows: Sequence[InsightRow]) -> int:
        """Write rows (last value wins per key) and return how many the database confirmed.

        Raises StoreError when the confirmed count differs from the rows sent (after removing
        duplicate keys within the batch, where the last one wins).
        """
        ...

    async def read_insights(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[InsightRow]:
        """Stored rows, ordered by account, metric and end_time, each with its local_date."""
        ...

    async def upsert_audience(self, rows: Sequence[AudienceRow]) -> int:
        """Write audience snapshots to `instagram_audience` (last value wins per key: u_id,
        account_id, metric, timeframe, breakdown, dimension_values, captured_on); return how
        many the database confirmed. Raises StoreError as upsert_insights does.
        """
        ...

    async def read_audience(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[AudienceRow]:
        """Stored audience rows, ordered by their key (u_id first)."""
        ...

    async def upsert_media(self, rows: Sequence[MediaRow]) -> int:
        """Write media objects to `instagram_media` (last value wins per u_id, account_id,
        media_id: a None overwrites too; `updated_at` becomes the time of the write); return how
        many the database confirmed. Raises StoreError as upsert_insights does.
        """
        ...

    async def read_media(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[MediaRow]:
        """Stored media rows, ordered by their key (u_id, account_id, media_id)."""
        ...

    async def upsert_media_insights(self, rows: Sequence[MediaInsightRow]) -> int:
        """Write media snapshots to `instagram_media_insights` (last value wins per u_id,
        account_id, media_id, metric, captured_on); return how many the database confirmed.
        Raises StoreError as upsert_insights does.
        """
        ...

    async def read_media_insights(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[MediaInsightRow]:
        """Stored media insight rows, ordered by their key (u_id first), value_json parsed."""
        ...

    async def list_tokens(
        self, *, u_id: UUID | None = None, platform: str = "instagram"
    ) -> list[TokenRow]:
        """Rows of `user_tokens`, ordered by user and account; a row igsync cannot use is a
        `BadTokenRow` saying why (one bad row never fails the read)."""
        ...

    async def token_page(
        self, *, after: UUID | str | None, limit: int, platform: str = "instagram"
    ) -> list[TokenRow]:
        """Up to `limit` rows ordered by `token_id`, only those after `after` (None: from the
        first): keyset paging, so a page costs the same however many rows come before it."""
        ...

    async def save_token(self, token: UserToken) -> None:
        """Insert or replace the token of (u_id, platform, account_id); adds the user if missing.

        The token is stored encrypted when IGSYNC_TOKEN_KEYS is set (token_crypto.seal)."""

    async def update_token(self, token_id: UUID, expected: str, update: TokenUpdate) -> bool:
        """Compare-and-swap: apply `update` only while the row still holds the token `expected`.

        Token, expiry, status and last_refreshed_at change in one statement. Returns False when
        another process changed the token first (or the row is gone), and then writes nothing.
        `expected` is the token itself, even when stored encrypted (token_crypto.holds); the new
        token is stored encrypted when IGSYNC_TOKEN_KEYS is set.
        """
        ...

    async def delete_tokens(self, u_id: UUID, *, account_id: str | None = None) -> int:
        """Remove a user's instagram tokens (one account, or all); returns how many."""
        ...

    async def write_sync_logs(self, entries: Sequence[SyncLog]) -> None:
        """Append one `instagram_sync_logs` row per entry, in one statement (Supabase: one
        request): all of them or none, verified. Raises StoreError, nothing written, when the
        store refuses a row or confirms another count (StoreUnavailableError when it stopped
        answering). PostgreSQL inside a session also releases claims with them (see
        `PostgresStore.write_sync_logs`)."""

    async def save_tokens(self, tokens: Sequence[UserToken]) -> int:
        """`save_token` for many rows in one transaction: all or none (Supabase: one upsert of
        `user_tokens`, after one of the missing `users`; PostgREST runs each in a transaction).

        Returns how many rows were saved (one per (u_id, platform, account_id); a later row of
        the same key wins). Users missing from `users` are added first. A replaced row keeps
        its token_id and created_at. Raises StoreError, nothing saved, when any row is refused.
        """
        ...

    def stream_rows(
        self,
        table: Table[Row],
        *,
        rows: RowFilter | None = None,
        order: Sequence[str] | None = None,
    ) -> AsyncGenerator[Row, None]:
        """Rows of `table` (tables.py) matching `rows` (None: all), in `order` (default: its
        key), fetched STREAM_BATCH at a time (store/streaming.py): memory stays flat however
        many there are.

        Close the iterator (`contextlib.aclosing`) when stopping early: it holds a cursor or
        a pooled connection until then. Raises StoreError when the read fails, ValueError for
        a column `table` does not have.
        """
        ...

    async def count_tokens(self, *, platform: str = "instagram") -> int:
        """How many `user_tokens` rows of `platform` this role can see (RLS may hide some):
        one count query, whatever the number of rows."""
        ...

    async def schema_version(self) -> int | None:
        """The newest migration the version record holds (None: no record readable)."""
        ...

    async def latest_sync_logs(self, accounts: Collection[AccountKey]) -> dict[AccountKey, SyncLog]:
        """The newest (last written) `instagram_sync_logs` row of each of `accounts`, keyed by
        (u_id as canonical UUID text, account_id).

        Reads the logs newest first, a page at a time, until every account has its row or
        SYNC_LOG_SCAN rows were read: an account left out was never synced, or not within the
        newest SYNC_LOG_SCAN logs (the table has no index by account to look further cheaply).
        """
        ...

    async def check_integrity(self, *, quick: bool = False) -> list[str]:
        """Problems found in the database, one line each saying what to do (empty: none).

        What each store can check cheaply (igsync.integrity): SQLite `pragma integrity_check`
        (`quick`: `quick_check`) and `foreign_key_check`; PostgreSQL the schema version and
        that each unique index the upserts rely on is there and valid; Supabase the schema
        version and columns. Raises StoreError when the check itself cannot run.
        """
        ...

    async def claim_accounts(
        self,
        keys: Sequence[tuple[UUID, str]],
        run_id: UUID,
        now: datetime,
        until: datetime,
        run_started: datetime,
    ) -> dict[tuple[UUID, str], AccountClaim]:
        """Compare-and-swap on each account's `igsync_claims` row (igsync.claims): run
        `run_id`, started at `run_started`, takes each account of `keys` (u_id, account_id)
        until `until`, unless another run holds it or finished it after `run_started`.

        Takes a missing claim, one whose `claimed_until` is at or before `now` and never
        released (its run crashed), or one released at or before `run_started`. Times are UTC,
        from the caller's clock; holding the claim already counts as taking it. Two runs asking
        at once never both get one account. Returns who holds each account afterwards, one
        entry per distinct key (an empty `keys`: {} and no store call). SQLite and PostgreSQL
        decide all keys at once (one transaction; one statement), so a failure takes none;
        Supabase asks account by account (see SupabaseStore). Raises StoreError when the
        store fails (StoreUnavailableError when it stopped answering).
        """
        ...

    async def renew_claims(self, run_id: UUID, until: datetime) -> int:
        """Move every unreleased claim of `run_id` to expire at `until`; returns how many."""
        ...

    async def release_claim(self, u_id: UUID, account_id: str, run_id: UUID, now: datetime) -> bool:
        """Mark the account's claim released at `now` if `run_id` holds it; False when it did
        not (it expired and another run took it over, or it was never taken). PostgreSQL
        inside a session may have released it already with the account's sync log, at the
        log's `finished_at` (`PostgresStore.write_sync_logs`): the same answer, no statement."""
        ...

    def session(self) -> AbstractAsyncContextManager[None]:
        """`async with store.session():` every call the current asyncio task makes on the
        store inside it uses one database connection (PostgreSQL: one connection of the
        pool, taken at the first call and given back at exit) instead of one checkout each;
        SQLite: one transaction, committed at exit, instead of a commit per call; Supabase
        holds nothing (HTTP requests) and does nothing.

        For a run of short calls in a row, such as a few accounts' upserts, sync logs and
        claim releases. Each call stays all or nothing on its own: one that fails rolls back
        alone and the next call goes on. Tasks never share a session: PostgreSQL gives one
        created inside it its own connection; SQLite refuses another task's call inside it
        (RuntimeError), so the body must not wait on anything but the store. Do not hold one
        across slow work that makes no store calls (Graph requests). Each call inside raises
        as it would outside; SQLite's may also raise StoreError at exit, when its commit
        failed and nothing written inside it was kept.
        """
        ...


#: an account as the sync logs name it: (u_id as canonical UUID text, account_id)
AccountKey = tuple[str, str | None]

#: sync logs read at most, newest first, to find each account's latest (latest_sync_logs)
SYNC_LOG_SCAN = 100_000
#: sync logs per page of that read
SYNC_LOG_PAGE = 5_000

#: tokens read per page when every account is walked (sync-all)
TOKEN_PAGE = 500


async def iter_tokens(store: Store, *, page_size: int = TOKEN_PAGE) -> AsyncIterator[TokenRow]:
    """Every instagram row of `user_tokens`, a page at a time (memory flat in the row count).

    A bad row's token_id is the text SQLite holds, which keeps the keyset order."""
    after: UUID | str | None = None
    while page := await store.token_page(after=after, limit=page_size):
        # only an empty page ends it: a server capping rows per answer (PostgREST's max-rows)
        # may send fewer than asked for before the end
        for token in page:
            yield token
        after = page[-1].token_id


SQLITE_PREFIX = "sqlite:///"


def sqlite_path(url: str) -> Path:
    """`sqlite:///rel.db` is relative, `sqlite:////abs/x.db` absolute (SQLAlchemy's form)."""
    return Path(url.removeprefix(SQLITE_PREFIX)).expanduser()


#: how a command opens a SQLite file: `create` it (and its directory) when missing, as the
#: commands that write data do; `write` one that must exist (what is not there cannot be
#: removed, refreshed or rekeyed); `read` one that must exist, read-only (a file or
#: directory this user may not write still reads)
Access = Literal["create", "write", "read"]


def open_store(url: str, *, access: Access = "create", connections: int | None = None) -> Store:
    """A store for a checked URL; imports only the driver it needs (keeps `--help` fast).

    `access` (`Access`): with `write` or `read` a SQLite file that does not exist is a
    ConfigError (exit 2) when the store is entered, and neither the file nor its directory
    is created; `read` opens it read-only. PostgreSQL and Supabase never create a database
    and take the role's own rights. `connections`: the most PostgreSQL connections the store
    opens at once (its pool's size; None: PostgresStore's default); SQLite has one, Supabase
    speaks HTTP.
    """
    if url.startswith(SQLITE_PREFIX):
        from igsync.store.sqlite import SQLiteStore

        return SQLiteStore(sqlite_path(url), access=access)
    if url.startswith(("postgresql://", "postgres://")):
        from igsync.store.postgres import PostgresStore

        if connections is not None:
            return PostgresStore(url, max_connections=connections)
        return PostgresStore(url)
    if url == "supabase":
        # The URL alone does not say which project: the caller passes SUPABASE_URL/_KEY.
        raise ConfigError(
            "the supabase store needs SUPABASE_URL and SUPABASE_KEY; open it with"
            " open_supabase_store(url, key)"
        )
    raise ConfigError(
        f"{url.split(':', 1)[0]} stores are not available in this version yet; "
        "use sqlite:///path.db"
    )


def open_supabase_store(supabase_url: str, key: str) -> Store:
    """The Supabase store (supabase-py over PostgREST); `key` is the service-role key for cron."""
    from igsync.store.supabase import SupabaseStore

    return SupabaseStore(supabase_url, key)
