"""Writing an export's rows as CSV, NDJSON or Parquet to a binary file, as they stream in.

    format   a row is                       types
    csv      a record of RFC 4180, with     text: uuid and text as they are, dates YYYY-MM-DD,
             a header, CRLF line ends       timestamps ISO-8601 in UTC (+00:00), JSON as its
                                            text; null is an empty field
    ndjson   one JSON object per line       the same, but null is null, numbers are numbers
                                            and value_json is nested JSON
    parquet  pyarrow, ROW_GROUP rows per    uuid/text: string, date: date32, timestamptz:
             row group (optional extra)     timestamp[us, tz=UTC], int8: int64, jsonb: string
                                            (its JSON text); nulls are nulls

Memory holds one flush of text (FLUSH_ROWS rows) or one row group, never the export.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from igsync.errors import ConfigError
from igsync.store.tables import PgType

if TYPE_CHECKING:
    from igsync.export._shapes import Column, Values

ExportFormat = Literal["csv", "ndjson", "parquet"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "ndjson", "parquet")

#: rows of text written to the file at a time
FLUSH_ROWS = 1000
#: rows per Parquet row group: large enough for columnar compression, small enough to hold
ROW_GROUP = 50_000

PARQUET_MISSING = (
    "Parquet export needs pyarrow, the parquet extra: uv tool install '.[parquet]'"
    ' in the igsync checkout, as README "Install" says'
)


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _same(value: Any) -> Any:
    return value


# uuid and text as text, dates and instants as ISO-8601 (instants are UTC already: models
# normalize them), numbers as numbers
_AS_TEXT: dict[PgType, Callable[[Any], Any]] = {
    "uuid": _text,
    "text": _same,
    "date": _iso,
    "timestamptz": _iso,
    "int8": _same,
    "jsonb": _json_text,
}
_AS_JSON: dict[PgType, Callable[[Any], Any]] = {**_AS_TEXT, "jsonb": _same}


class _Buffered:
    """A text sink for csv.writer that writes UTF-8 to a binary file a chunk at a time."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        if self._parts:
            self._out.write("".join(self._parts).encode())
            self._parts.clear()
        self._out.flush()


async def _write_csv(
    columns: tuple[Column, ...], rows: AsyncIterator[Values], out: BinaryIO
) -> int:
    sink = _Buffered(out)
    # the csv module's default dialect is RFC 4180's: CRLF, quotes doubled, minimal quoting
    writer = csv.writer(sink)
    writer.writerow([name for name, _ in columns])
    convert = [_AS_TEXT[kind] for _, kind in columns]
    count = 0
    async for values in rows:
        writer.writerow([to(v) for to, v in zip(convert, values, strict=True)])
        count += 1
        if count % FLUSH_ROWS == 0:
            sink.flush()
    sink.flush()
    return count


async def _write_ndjson(
    columns: tuple[Column, ...], rows: AsyncIterator[Values], out: BinaryIO
) -> int:
    sink = _Buffered(out)
    names = [name for name, _ in columns]
    convert = [_AS_JSON[kind] for _, kind in columns]
    count = 0
    async for values in rows:
        record = {n: to(v) for n, to, v in zip(names, convert, values, strict=True)}
        sink.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
        if count % FLUSH_ROWS == 0:
            sink.flush()
    sink.flush()
    return count


def require_pyarrow() -> None:
    """Raise ConfigError, saying how to install it, when pyarrow is not installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError(PARQUET_MISSING) from None


async def _write_parquet(
    columns: tuple[Column, ...], rows: AsyncIterator[Values], out: BinaryIO
) -> int:
    require_pyarrow()
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {
        "uuid": pa.string(),
        "text": pa.string(),
        "date": pa.date32(),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "int8": pa.int64(),
        "jsonb": pa.string(),
    }
    schema = pa.schema([pa.field(name, types[kind]) for name, kind in columns])
    # uuids and JSON become text; dates, aware datetimes and ints go to pyarrow as they are
    convert = [_AS_TEXT[kind] if kind in ("uuid", "jsonb") else _same for _, kind in columns]
    held: list[list[Any]] = [[] for _ in columns]
    count = 0

    def flush(writer: Any) -> None:
        arrays = [pa.array(c, type=f.type) for c, f in zip(held, schema, strict=True)]
        writer.write_batch(pa.record_batch(arrays, schema=schema))
        for column in held:
            column.clear()

    with pq.ParquetWriter(out, schema) as writer:
        async for values in rows:
            for column, to, v in zip(held, convert, values, strict=True):
                column.append(to(v))
            count += 1
            if count % ROW_GROUP == 0:
                flush(writer)
        if count % ROW_GROUP:
            flush(writer)
    out.flush()
    return count


WRITERS = {"csv": _write_csv, "ndjson": _write_ndjson, "parquet": _write_parquet}
