"""What an export holds: the columns and rows of each stream, long or wide.

    stream    long shape (one row per stored value)                  --wide key
    account   instagram_insights, every metric (online_followers     u_id, account_id, local_date
              too: one row a day, its 24 hourly values in value_json)
    audience  instagram_audience                                     u_id, account_id, captured_on,
                                                                     timeframe, breakdown,
                                                                     dimension_values
    media     instagram_media_insights joined with the fields of     u_id, account_id, media_id,
              its instagram_media row; stories left out              captured_on (+ media fields)
    stories   the same, only media_product_type STORY

Wide: one column per metric (its `value`; `value_json` is in the long shape only), in name
order, null where no value is stored. Its columns are the metrics found by a first read of the
same rows, so a wide export reads them twice; a metric first stored between the two reads is
not in it.

Rows are streamed from the store (`Store.stream_rows`), never collected: the join of media
merges two streams ordered alike, the wide shape groups consecutive rows of one key.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, Literal

from igsync.models import MediaInsightRow, MediaRow
from igsync.store import Store
from igsync.store.streaming import RowFilter
from igsync.store.tables import AUDIENCE, INSIGHTS, MEDIA, MEDIA_INSIGHTS, PgType, Table

ExportStream = Literal["account", "audience", "media", "stories"]
EXPORT_STREAMS: tuple[ExportStream, ...] = ("account", "audience", "media", "stories")

#: a column of an export: its name and its PostgreSQL type (the writers map it)
Column = tuple[str, PgType]
#: a row of an export: Python values in column order (UUID, str, date, datetime in UTC, int,
#: a JSON value, or None)
Values = tuple[Any, ...]

_MEDIA_FIELDS: tuple[Column, ...] = tuple(c for c in MEDIA.columns if c[0] not in MEDIA.key)
_MEDIA_INSIGHT_FIELDS: tuple[Column, ...] = tuple(
    c for c in MEDIA_INSIGHTS.columns if c[0] not in ("u_id", "account_id", "media_id")
)
_JOINED: tuple[Column, ...] = (
    *(c for c in MEDIA.columns if c[0] in MEDIA.key),
    *_MEDIA_FIELDS,
    *_MEDIA_INSIGHT_FIELDS,
)


@dataclass(frozen=True)
class Shape:
    """An export's columns and the stream of its rows (consume it once)."""

    columns: tuple[Column, ...]
    rows: AsyncGenerator[Values, None]


@dataclass(frozen=True)
class _Wide:
    """How one stream pivots: the key columns, which of them group a row, its ordering."""

    key: tuple[Column, ...]
    order: tuple[str, ...]


_WIDE: dict[ExportStream, _Wide] = {
    "account": _Wide(
        key=(("u_id", "uuid"), ("account_id", "text"), ("local_date", "date")),
        order=("u_id", "account_id", "local_date", "metric", "end_time"),
    ),
    "audience": _Wide(
        key=(
            ("u_id", "uuid"),
            ("account_id", "text"),
            ("captured_on", "date"),
            ("timeframe", "text"),
            ("breakdown", "text"),
            ("dimension_values", "text"),
        ),
        order=(
            "u_id",
            "account_id",
            "captured_on",
            "timeframe",
            "breakdown",
            "dimension_values",
            "metric",
        ),
    ),
    "media": _Wide(
        key=(*_JOINED[:3], *_MEDIA_FIELDS, ("captured_on", "date")),
        order=("u_id", "account_id", "media_id", "captured_on", "metric"),
    ),
}
_WIDE["stories"] = _WIDE["media"]


def _row_stream(
    store: Store, stream: ExportStream, rows: RowFilter, order: Sequence[str] | None
) -> tuple[tuple[Column, ...], AsyncGenerator[Values, None]]:
    """The long columns of `stream` and its rows in `order`, as value tuples."""
    if stream in ("media", "stories"):
        return _JOINED, _joined(store, rows, order, stories=stream == "stories")
    table: Table[Any] = INSIGHTS if stream == "account" else AUDIENCE
    return table.columns, _plain(store, table, rows, order)


async def _plain(
    store: Store, table: Table[Any], rows: RowFilter, order: Sequence[str] | None
) -> AsyncGenerator[Values, None]:
    # one column would make attrgetter give a bare value; every table has several
    values: Callable[[Any], Values] = attrgetter(*table.names)
    async with aclosing(store.stream_rows(table, rows=rows, order=order)) as found:
        async for row in found:
            yield values(row)


def _media_key(row: MediaRow | MediaInsightRow) -> tuple[str, str, str]:
    # as the stores order them: a uuid as its lowercase text, text by code point
    return (str(row.u_id), row.account_id, row.media_id)


async def _joined(
    store: Store, rows: RowFilter, order: Sequence[str] | None, *, stories: bool
) -> AsyncGenerator[Values, None]:
    """Media insight rows with their media object's fields: a merge of two streams ordered by
    (u_id, account_id, media_id), so neither table is held. A snapshot whose object is not
    stored goes with the media (not stories) export, its fields null."""
    objects = store.stream_rows(MEDIA, rows=RowFilter(u_id=rows.u_id), order=MEDIA.key)
    snapshots = store.stream_rows(MEDIA_INSIGHTS, rows=rows, order=order)
    media_fields = [name for name, _ in _MEDIA_FIELDS]
    insight_fields = [name for name, _ in _MEDIA_INSIGHT_FIELDS]
    async with aclosing(objects) as media, aclosing(snapshots) as insights:
        current = await anext(media, None)
        async for snapshot in insights:
            key = _media_key(snapshot)
            while current is not None and _media_key(current) < key:
                current = await anext(media, None)
            found = current if current is not None and _media_key(current) == key else None
            is_story = found is not None and found.media_product_type == "STORY"
            if is_story != stories:
                continue
            yield (
                snapshot.u_id,
                snapshot.account_id,
                snapshot.media_id,
                *(getattr(found, n) if found else None for n in media_fields),
                *(getattr(snapshot, n) for n in insight_fields),
            )


async def export_shape(
    store: Store,
    stream: ExportStream,
    *,
    rows: RowFilter | None = None,
    wide: bool = False,
) -> Shape:
    """The columns and rows of `stream` (see the module's table) from an open `store`.

    Long rows come in their table's key order; wide rows in key order too. Raises StoreError
    when the store fails (also later, while the rows are consumed).
    """
    rows = rows or RowFilter()
    if not wide:
        columns, found = _row_stream(store, stream, rows, None)
        return Shape(columns, found)
    pivot = _WIDE[stream]
    long_columns, first = _row_stream(store, stream, rows, pivot.order)
    metric_at = [name for name, _ in long_columns].index("metric")
    metrics: set[str] = set()
    async with aclosing(first) as found:
        async for values in found:
            metrics.add(values[metric_at])
    names = sorted(metrics)
    columns = (*pivot.key, *((m, "int8") for m in names))
    _, second = _row_stream(store, stream, rows, pivot.order)
    return Shape(columns, _pivoted(second, long_columns, pivot, names))


async def _pivoted(
    found: AsyncGenerator[Values, None],
    long_columns: tuple[Column, ...],
    pivot: _Wide,
    metrics: list[str],
) -> AsyncGenerator[Values, None]:
    """Consecutive long rows of one key as one wide row. Two values of one metric under one
    key (an account that changed time zone has two rows for a local date) show the larger,
    as the instagram_daily view does."""
    at = {name: i for i, (name, _) in enumerate(long_columns)}
    key_at = [at[name] for name, _ in pivot.key]
    metric_at, value_at = at["metric"], at["value"]
    slot = {m: i for i, m in enumerate(metrics)}
    # a row of a period other than day has no local date to sit on
    day_at = at.get("local_date")
    key: Values | None = None
    cells: list[int | None] = []
    async with aclosing(found) as rows:
        async for values in rows:
            if day_at is not None and values[day_at] is None:
                continue
            this = tuple(values[i] for i in key_at)
            if this != key:
                if key is not None:
                    yield (*key, *cells)
                key, cells = this, [None] * len(metrics)
            i = slot.get(values[metric_at])
            value = values[value_at]
            if i is not None and value is not None:
                held = cells[i]
                cells[i] = value if held is None else max(held, value)
    if key is not None:
        yield (*key, *cells)
