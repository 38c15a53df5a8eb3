"""`igsync export`: stored rows handed on as CSV, NDJSON or Parquet, streamed from the store.

    export_rows     one stream's rows (long or wide) from an open store to a binary file
    atomic_output   a file that appears complete, or not at all
    ExportSummary   what was written

Which rows and columns each stream gives: `_shapes.py`; how each format writes them:
`_writers.py`. Memory stays flat in the number of rows (benchmarks/export.py measures it).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import aclosing
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel

from igsync.errors import InputError
from igsync.export._shapes import EXPORT_STREAMS, ExportStream, export_shape
from igsync.export._writers import EXPORT_FORMATS, WRITERS, ExportFormat, require_pyarrow
from igsync.store import Store
from igsync.store.streaming import RowFilter

__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_STREAMS",
    "ExportFormat",
    "ExportStream",
    "ExportSummary",
    "RowFilter",
    "atomic_output",
    "export_rows",
    "refuse_database",
    "require_pyarrow",
]


class ExportSummary(BaseModel):
    """What an export wrote: `rows` data rows (the header not counted) of `columns`."""

    stream: ExportStream
    format: ExportFormat
    wide: bool
    rows: int
    columns: list[str]
    #: the file written; None for stdout
    output: str | None = None


async def export_rows(
    store: Store,
    stream: ExportStream,
    fmt: ExportFormat,
    out: BinaryIO,
    *,
    rows: RowFilter | None = None,
    wide: bool = False,
) -> ExportSummary:
    """Write `stream`'s rows matching `rows` from the open `store` to `out` in `fmt`.

    Long shape: one line per stored value; `wide`: one per key with a column per metric (see
    `igsync.export._shapes`). Raises ConfigError for Parquet without pyarrow (before reading
    anything), StoreError when the store fails, and whatever writing to `out` raises
    (BrokenPipeError from a reader that left).
    """
    if fmt == "parquet":
        require_pyarrow()
    shape = await export_shape(store, stream, rows=rows, wide=wide)
    async with aclosing(shape.rows) as found:
        count = await WRITERS[fmt](shape.columns, found, out)
    return ExportSummary(
        stream=stream, format=fmt, wide=wide, rows=count, columns=[n for n, _ in shape.columns]
    )


#: the files beside a SQLite database that are part of it (WAL mode, rollback journal)
_DATABASE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def refuse_database(path: Path, option: str, database: Path | None) -> None:
    """Raises InputError, naming `option`, when `path` (through any symlink) is the SQLite
    `database` or one of its -wal/-shm/-journal files: an output written there would replace
    the stored rows and tokens, or corrupt them."""
    if database is None:
        return
    written = os.path.realpath(path)
    stored = os.path.realpath(database)
    if any(written == stored + suffix for suffix in _DATABASE_SUFFIXES):
        raise InputError(f"{option} {path} is the database igsync reads from; name another file")


def _umask() -> int:
    """The process's umask (Python 3.11 can only read it by setting it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_output(
    path: Path, option: str = "--output", *, database: Path | None = None
) -> Iterator[BinaryIO]:
    """A binary file that becomes `path` only when the block ends without an error: written
    as a temporary file beside it, then renamed over it (atomic on one file system), so a
    reader never sees half an export and a failed one leaves the old file in place. A file
    that was there keeps its mode (a new one gets 0666 less the umask); through a symlink,
    the file it points to is replaced and the link stays. A path that exists and is no
    regular file (/dev/stdout, a named pipe, `>(gzip > x.gz)`) is written into as it is:
    renaming over it would put a file where a device or a pipe was.

    Raises InputError, naming `option` (the command's flag for `path`), when `path` is the
    SQLite `database` the output is read from, or its directory does not exist or cannot be
    written.
    """
    refuse_database(path, option, database)
    try:
        found: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        found = None
    except OSError as exc:
        raise InputError(f"{option} {path}: {exc.strerror or exc}") from None
    if found is not None and not stat.S_ISREG(found.st_mode):
        try:
            stream = open(path, "wb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise InputError(f"{option} {path}: {exc.strerror or exc}") from None
        with stream:
            yield stream
        return
    target = Path(os.path.realpath(path))
    mode = stat.S_IMODE(found.st_mode) if found is not None else 0o666 & ~_umask()
    directory = target.parent
    try:
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".part")
    except OSError as exc:
        raise InputError(
            f"{option} {path}: cannot write in {directory}: {exc.strerror or exc}"
        ) from None
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
