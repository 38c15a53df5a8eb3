"""Reading a table a batch at a time (`Store.stream_rows`): what to select, for every store.

An export of a million rows must not hold a million rows: each store fetches `STREAM_BATCH`
rows per round trip (SQLite `fetchmany`, a PostgreSQL server-side cursor, PostgREST range
pages) and hands them on one at a time. This module builds the statement they share.

    RowFilter       which rows: one user (or all), an inclusive range of account-local dates
    DAY_COLUMNS     the local-date column each table is filtered on
    select_sql      the SELECT for SQLite (`?`) or PostgreSQL (`%s`), with its parameters

The order is part of the contract: text columns sort by code point in every store (SQLite
compares text bytewise; PostgreSQL is told `collate "C"`; a uuid sorts as its lowercase text
does), so two streams of one store can be merged in Python (igsync.export joins media so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from uuid import UUID

from igsync.store.tables import Table

#: rows per round trip: large enough to amortise it, small enough to keep memory flat
STREAM_BATCH = 5000

#: the account-local date each table's rows describe (DESIGN §6); instagram_media has none
DAY_COLUMNS = {
    "instagram_insights": "local_date",
    "instagram_audience": "captured_on",
    "instagram_media_insights": "captured_on",
}


@dataclass(frozen=True)
class RowFilter:
    """Which rows to read: `u_id` None for every user; `since`/`until` inclusive local dates
    on the table's DAY_COLUMNS column (None: unbounded; a row with no date then still shows)."""

    u_id: UUID | None = None
    since: date | None = None
    until: date | None = None

    def conditions(self, table: Table[Any]) -> list[tuple[str, str, object]]:
        """(column, operator, value) for each bound given. Raises ValueError for a date bound
        on a table without a local date."""
        found: list[tuple[str, str, object]] = []
        if self.u_id is not None:
            found.append(("u_id", "=", self.u_id))
        if self.since is not None or self.until is not None:
            day = DAY_COLUMNS.get(table.name)
            if day is None:
                raise ValueError(f"{table.name} has no local date to filter on")
            if self.since is not None:
                found.append((day, ">=", self.since))
            if self.until is not None:
                found.append((day, "<=", self.until))
        return found


def checked_order(table: Table[Any], order: Sequence[str] | None) -> tuple[str, ...]:
    """`order` (default: the table's key), every name a column of `table`; ValueError if not
    (names end up in SQL, so only the table's own are let through)."""
    chosen = tuple(order) if order else table.key
    unknown = [name for name in chosen if name not in table.names]
    if unknown:
        raise ValueError(f"{table.name} has no column {unknown[0]!r} to order by")
    return chosen


def select_sql(
    table: Table[Any],
    rows: RowFilter,
    order: Sequence[str] | None,
    dialect: Literal["sqlite", "postgres"],
) -> tuple[str, list[object]]:
    """The SELECT of `table.names` for `rows` in `order`, and its parameters: for SQLite as
    it stores them (uuid and date as text), for PostgreSQL as they are."""
    mark = "?" if dialect == "sqlite" else "%s"
    where: list[str] = []
    params: list[object] = []
    for column, operator, value in rows.conditions(table):
        where.append(f"{column} {operator} {mark}")
        if dialect == "sqlite" and isinstance(value, UUID | date):
            value = str(value) if isinstance(value, UUID) else value.isoformat()
        params.append(value)
    kinds = dict(table.columns)
    ordered = [
        f'{name} collate "C"' if dialect == "postgres" and kinds[name] == "text" else name
        for name in checked_order(table, order)
    ]
    sql = f"select {', '.join(table.names)} from {table.name}"  # noqa: S608 - constant names
    if where:
        sql += " where " + " and ".join(where)
    return f"{sql} order by {', '.join(ordered)}", params
