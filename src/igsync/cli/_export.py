"""`igsync export`: hand the stored rows on as CSV, NDJSON or Parquet."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, BinaryIO, Literal
from uuid import UUID

import typer

from igsync.cli._common import QuietOpt, VerboseOpt, database_file, make_output, open_db, run
from igsync.cli._common import settings as load

if TYPE_CHECKING:
    from igsync.export import ExportFormat, ExportStream, ExportSummary, RowFilter
    from igsync.store import Store


def export(
    ctx: typer.Context,
    format_: Annotated[
        Literal["csv", "ndjson", "parquet"],
        typer.Option(
            "--format",
            help="csv (RFC 4180, with a header), ndjson, or parquet "
            "(needs the parquet extra: uv tool install '.[parquet]').",
        ),
    ] = "csv",
    stream: Annotated[
        Literal["account", "audience", "media", "stories"],
        typer.Option(
            help="account: instagram_insights (online_followers too); audience: "
            "instagram_audience; media / stories: instagram_media_insights with each media "
            "object's fields."
        ),
    ] = "account",
    user: Annotated[UUID | None, typer.Option(help="Only this user's rows (users.u_id).")] = None,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="First account-local date (local_date, or captured_on), inclusive.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(metavar="YYYY-MM-DD", help="Last account-local date, inclusive."),
    ] = None,
    wide: Annotated[
        bool,
        typer.Option(
            "--wide",
            help="One column per metric: a row per account and local date (audience: and "
            "breakdown value; media: per object and day captured).",
        ),
    ] = False,
    to: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write FILE (atomically) instead of stdout; - is stdout.",
        ),
    ] = None,
    json_: Annotated[
        bool,
        typer.Option("--json", help="With --output: print what was written as one JSON document."),
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Export stored rows, streamed from the database (memory stays flat), to stdout or a file.

    Long shape by default: one row per stored value, as in its table. Examples:

    \b
        igsync export --since 2026-11-01 > insights.csv
        igsync export --stream media --format parquet -o media.parquet
    """
    from igsync.errors import InputError
    from igsync.export import RowFilter, require_pyarrow
    from igsync.inputs import parse_day

    out = make_output(ctx, json_, quiet, verbose)
    # as for cat, tar and curl, - is stdout (./-, which a Path would make -, names a file)
    output = None if to is None or to == "-" else Path(to)
    first = None if since is None else parse_day(since, "--since")
    last = None if until is None else parse_day(until, "--until")
    if first and last and first > last:
        raise InputError(f"--since {first} is after --until {last}")
    if output is None and out.json_mode:
        raise InputError("--json needs --output FILE: without it, stdout carries the export")
    if output is not None and output.is_dir():
        raise InputError(f"--output {output} is a directory; name a file")
    if output is None and format_ == "parquet" and sys.stdout.isatty():
        raise InputError("Parquet is binary: redirect stdout (> file.parquet) or use --output")
    if format_ == "parquet":
        require_pyarrow()
    rows = RowFilter(u_id=user, since=first, until=last)
    db = open_db(ctx, load(), access="read")
    if output is None:
        summary = _to_stdout(db, stream, format_, rows, wide)
    else:
        from igsync.export import atomic_output

        with atomic_output(output, database=database_file(db)) as file:
            summary = run(_export(db, stream, format_, file, rows, wide))
        summary.output = str(output)
    if summary is None:
        return  # the reader left (`| head`): nothing more to say, and no one to say it to
    if out.json_mode:
        out.emit_json(summary)
    elif output is not None and out.chatty:
        out.err.print(f"{summary.rows} rows written to {output}", highlight=False, markup=False)


def _to_stdout(
    db: Store, stream: ExportStream, fmt: ExportFormat, rows: RowFilter, wide: bool
) -> ExportSummary | None:
    """The export on stdout; None when its reader stopped reading (`| head`), which ends the
    export quietly: stdout then points at /dev/null, so Python's flush at exit finds no pipe.
    None too when stdout cannot be written (full disk, closed): main() then says so, exit 1."""
    from igsync.cli import _stdout

    try:
        with _stdout.guarded():
            summary = run(_export(db, stream, fmt, sys.stdout.buffer, rows, wide))
            sys.stdout.buffer.flush()  # a full disk shows on the last write, not at exit
            return summary
        return None
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return None


async def _export(
    db: Store, stream: ExportStream, fmt: ExportFormat, out: BinaryIO, rows: RowFilter, wide: bool
) -> ExportSummary:
    from igsync.export import export_rows

    async with db as store:
        return await export_rows(store, stream, fmt, out, rows=rows, wide=wide)
