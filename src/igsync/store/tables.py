"""The tables stores upsert rows into, described once for all three stores.

    Table            one table: its row model, columns with their PostgreSQL types, unique key
    INSIGHTS         instagram_insights        <- InsightRow
    AUDIENCE         instagram_audience        <- AudienceRow
    MEDIA            instagram_media           <- MediaRow
    MEDIA_INSIGHTS   instagram_media_insights  <- MediaInsightRow
    TableRows        the Store methods that write and read them, on a store's _upsert/_read
    dedupe_by_key    one row per key, the last winning

Every store builds its upsert from a Table: insert `columns` plus `stamp` (the time of the
write), on conflict on `key` overwrite everything else (last value wins), and verify the count.
The DDL itself stays in the migrations (schema.py): a test checks the two agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Generic, Literal, Protocol, TypeVar
from uuid import UUID

from pydantic import BaseModel

from igsync.models import AudienceRow, InsightRow, MediaInsightRow, MediaRow

#: the PostgreSQL types of the columns rows set (int8 is bigint)
PgType = Literal["uuid", "text", "date", "timestamptz", "int8", "jsonb"]


Row = TypeVar("Row", bound=BaseModel)


class Keyed(Protocol):
    """A row with its table's unique key as a tuple (InsightRow, AudienceRow, …)."""

    @property
    def key(self) -> tuple[object, ...]: ...


KeyedRow = TypeVar("KeyedRow", bound=Keyed)


def dedupe_by_key(rows: Sequence[KeyedRow]) -> list[KeyedRow]:
    """One row per key, the last one winning, in first-seen order.

    PostgreSQL refuses an upsert that touches one key twice (21000), so every store sends
    de-duplicated batches and verifies against their length.
    """
    latest: dict[tuple[object, ...], KeyedRow] = {}
    for row in rows:
        latest[row.key] = row
    return list(latest.values())


@dataclass(frozen=True)
class Table(Generic[Row]):
    """One table rows are upserted into (`Row`: its model, whose fields name the columns)."""

    name: str
    model: type[Row]
    #: what its rows are called in messages: "insight rows"
    noun: str
    #: (column, PostgreSQL type) of every column a row sets: one per field of the model
    columns: tuple[tuple[str, PgType], ...]
    #: the unique key an upsert conflicts on (the columns of the model's `key`)
    key: tuple[str, ...]
    #: the column the store sets to the time of the write (not part of the model)
    stamp: Literal["fetched_at", "updated_at"]
    #: the order of reads
    order: tuple[str, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The columns a row sets, in order."""
        return tuple(name for name, _ in self.columns)

    @property
    def types(self) -> tuple[PgType, ...]:
        return tuple(kind for _, kind in self.columns)

    @property
    def changes(self) -> tuple[str, ...]:
        """What an upsert overwrites on a key already stored: every other column, and stamp."""
        return (*(n for n in self.names if n not in self.key), self.stamp)

    def on_conflict(self) -> str:
        """`on conflict (key) do update set …`, the same in PostgreSQL and SQLite."""
        sets = ",\n    ".join(f"{name} = excluded.{name}" for name in self.changes)
        return f"on conflict ({', '.join(self.key)}) do update set\n    {sets}"


INSIGHTS = Table(
    name="instagram_insights",
    model=InsightRow,
    noun="insight rows",
    columns=(
        ("u_id", "uuid"),
        ("account_id", "text"),
        ("metric", "text"),
        ("metric_type", "text"),
        ("period", "text"),
        ("end_time", "timestamptz"),
        ("local_date", "date"),
        ("value", "int8"),
        ("value_json", "jsonb"),
    ),
    key=("u_id", "account_id", "metric", "end_time"),
    stamp="fetched_at",
    # account first, as read_insights always listed them
    order=("account_id", "metric", "end_time", "u_id"),
)

_AUDIENCE_KEY = (
    "u_id",
    "account_id",
    "metric",
    "timeframe",
    "breakdown",
    "dimension_values",
    "captured_on",
)
AUDIENCE = Table(
    name="instagram_audience",
    model=AudienceRow,
    noun="audience rows",
    columns=(
        ("u_id", "uuid"),
        ("account_id", "text"),
        ("metric", "text"),
        ("timeframe", "text"),
        ("breakdown", "text"),
        ("dimension_values", "text"),
        ("captured_on", "date"),
        ("value", "int8"),
    ),
    key=_AUDIENCE_KEY,
    stamp="fetched_at",
    order=_AUDIENCE_KEY,
)

MEDIA = Table(
    name="instagram_media",
    model=MediaRow,
    noun="media rows",
    columns=(
        ("u_id", "uuid"),
        ("account_id", "text"),
        ("media_id", "text"),
        ("media_type", "text"),
        ("media_product_type", "text"),
        ("timestamp", "timestamptz"),
        ("permalink", "text"),
        ("like_count", "int8"),
        ("comments_count", "int8"),
    ),
    key=("u_id", "account_id", "media_id"),
    stamp="updated_at",
    order=("u_id", "account_id", "media_id"),
)

_MEDIA_INSIGHT_KEY = ("u_id", "account_id", "media_id", "metric", "captured_on")
MEDIA_INSIGHTS = Table(
    name="instagram_media_insights",
    model=MediaInsightRow,
    noun="media insight rows",
    columns=(
        ("u_id", "uuid"),
        ("account_id", "text"),
        ("media_id", "text"),
        ("metric", "text"),
        ("captured_on", "date"),
        ("value", "int8"),
        ("value_json", "jsonb"),
    ),
    key=_MEDIA_INSIGHT_KEY,
    stamp="fetched_at",
    order=_MEDIA_INSIGHT_KEY,
)

#: every table rows are upserted into
UPSERTED: tuple[Table[Any], ...] = (INSIGHTS, AUDIENCE, MEDIA, MEDIA_INSIGHTS)


class TableRows(ABC):
    """The row methods of `Store` (its docstrings say what each guarantees), one table each:
    a store implements `_upsert` and `_read` once, for any Table. Also `Store.session` for
    a store that holds nothing per task (Supabase: HTTP requests).
    """

    #: see `Store.write_group`
    write_group = 1

    def session(self) -> AbstractAsyncContextManager[None]:
        """Nothing to hold (see `Store.session`); PostgreSQL holds a pooled connection,
        SQLite a transaction."""
        return nullcontext()

    @abstractmethod
    async def _upsert(self, table: Table[Any], rows: Sequence[Keyed]) -> int:
        """Upsert `rows` into `table` (one per key, the last wins) and verify the count the
        database confirms; return it. Raises StoreError on a refusal or a short count."""

    @abstractmethod
    async def _read(
        self, table: Table[Row], u_id: UUID | None, account_id: str | None
    ) -> list[Row]:
        """Rows of `table` filtered by user and account (None: any), in `table.order`."""

    async def upsert_insights(self, rows: Sequence[InsightRow]) -> int:
        return await self._upsert(INSIGHTS, rows)

    async def read_insights(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[InsightRow]:
        return await self._read(INSIGHTS, u_id, account_id)

    async def upsert_audience(self, rows: Sequence[AudienceRow]) -> int:
        return await self._upsert(AUDIENCE, rows)

    async def read_audience(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[AudienceRow]:
        return await self._read(AUDIENCE, u_id, account_id)

    async def upsert_media(self, rows: Sequence[MediaRow]) -> int:
        return await self._upsert(MEDIA, rows)

    async def read_media(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[MediaRow]:
        return await self._read(MEDIA, u_id, account_id)

    async def upsert_media_insights(self, rows: Sequence[MediaInsightRow]) -> int:
        return await self._upsert(MEDIA_INSIGHTS, rows)

    async def read_media_insights(
        self, *, u_id: UUID | None = None, account_id: str | None = None
    ) -> list[MediaInsightRow]:
        return await self._read(MEDIA_INSIGHTS, u_id, account_id)
