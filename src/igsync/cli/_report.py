"""`igsync report`: the last N local days per account and metric, on the terminal, as JSON,
or as one self-contained HTML page of charts."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

import typer

from igsync.cli._common import (
    JsonOpt,
    QuietOpt,
    VerboseOpt,
    database_file,
    globals_of,
    make_output,
    open_db,
    run,
)
from igsync.cli._common import settings as load

if TYPE_CHECKING:
    from collections.abc import Sequence

    from rich.console import RenderableType
    from rich.table import Table

    from igsync.report import AccountReport, Report
    from igsync.store import Store


def report(
    ctx: typer.Context,
    days: Annotated[
        int, typer.Option(min=1, max=366, help="How many account-local days to show.")
    ] = 14,
    until: Annotated[
        str | None,
        typer.Option(
            metavar="YYYY-MM-DD",
            help="Last local date shown (inclusive); default: the newest one stored.",
        ),
    ] = None,
    user: Annotated[
        UUID | None, typer.Option(help="Only this user's accounts (users.u_id).")
    ] = None,
    metrics: Annotated[
        str | None,
        typer.Option(help="Comma list of daily account metrics; default: every one stored."),
    ] = None,
    streams: Annotated[
        str | None,
        typer.Option(
            help="Comma list of account, audience, media, stories; default: all (a stream "
            "with no stored rows shows nothing)."
        ),
    ] = None,
    html_to: Annotated[
        str | None,
        typer.Option(
            "--html",
            metavar="FILE",
            help="Also write FILE: one self-contained HTML page of charts (opens offline; "
            "needs the report extra: uv tool install '.[report]').",
        ),
    ] = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Show what `igsync demo` stored last (its demo.db), not --db's data."
        ),
    ] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Show the stored numbers: per account and metric, the latest value, the change of the
    mean daily value against the previous period, and a sparkline (a blank is a day with no
    value, never a zero). Examples:

    \b
        igsync report --days 30 --metrics reach,views
        igsync report --html report.html
        igsync report --demo
    """
    from igsync.errors import InputError
    from igsync.inputs import parse_day
    from igsync.report import require_plotly

    out = make_output(ctx, json_, quiet, verbose)
    if html_to == "-":
        raise InputError(
            "--html -: the page is written to a file, the tables to stdout; name a file"
        )
    html = None if html_to is None else Path(html_to)
    chosen_metrics = _metric_list(metrics)
    chosen_streams = _streams(streams)
    if chosen_metrics and chosen_streams is not None and "account" not in chosen_streams:
        raise InputError(
            f"--metrics picks daily account metrics, and --streams {','.join(chosen_streams)}"
            f" leaves the account stream out; add it: --streams"
            f" {','.join(['account', *chosen_streams])}"
        )
    if html is not None:
        if html.is_dir():
            raise InputError(f"--html {html} is a directory; name a file")
        if not html.absolute().parent.is_dir():  # before the store is read, not after
            raise InputError(
                f"--html {html}: cannot write in {html.absolute().parent}: no such directory"
            )
        require_plotly()
    last = None if until is None else parse_day(until, "--until")
    db = _demo_store(ctx) if demo else open_db(ctx, load(), access="read")
    if html is not None:
        from igsync.export import refuse_database

        refuse_database(html, "--html", database_file(db))  # before the report is built
    result = run(_build(db, days, last, user, chosen_metrics, chosen_streams))
    if html is not None:
        from igsync.export import atomic_output
        from igsync.report import render_html

        page = render_html(result).encode()
        with atomic_output(html, "--html", database=database_file(db)) as file:
            file.write(page)
    if out.json_mode:
        document = result.model_dump(mode="json")
        if html is not None:
            document["html"] = str(html)
        out.emit_json(document)
        return
    for shown in _tables(result):
        out.print(shown)
    if not result.accounts:
        span = f"{result.since} to {result.until}"
        if demo:
            other = "" if user is None else " or another --user"
            said = f"no demo rows{'' if user is None else f' of user {user}'} for {span}:"
            said += f" choose --until{other}"
        elif user is not None:
            said = (
                f"no rows stored for user {user} from {span}: check --user (`igsync accounts"
                " list`), choose --until, or run `igsync fetch` first"
            )
        else:
            said = (
                f"no rows stored for {span}: run `igsync fetch` first, or choose --until"
                " (the demo's rows: `igsync report --demo`)"
            )
        out.print(said)
    if html is not None and out.chatty:
        out.err.print(f"charts written to {html}", highlight=False, markup=False)


def _demo_store(ctx: typer.Context) -> Store:
    """The database `igsync demo` keeps its rows in (config.demo_database_path)."""
    from igsync.config import demo_database_path
    from igsync.errors import InputError
    from igsync.store import open_store

    if globals_of(ctx).db:
        raise InputError("--demo reads the demo's own database: drop --db, or drop --demo")
    path = demo_database_path()
    if not path.exists():
        raise InputError(f"--demo: no demo database yet ({path}); run `igsync demo` first")
    return open_store(f"sqlite:///{path}", access="read")


def _streams(text: str | None) -> tuple[str, ...] | None:
    from igsync.errors import InputError
    from igsync.report import REPORT_STREAMS

    if text is None:
        return None
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in REPORT_STREAMS]
    if not names or unknown:
        what = f"unknown stream {', '.join(unknown)}" if unknown else "an empty list"
        raise InputError(f"--streams: {what}; choose from {', '.join(REPORT_STREAMS)}")
    return names


def _metric_list(text: str | None) -> tuple[str, ...] | None:
    from igsync.catalogue import METRIC_CONFIG, parse_metric_list
    from igsync.errors import InputError

    if text is None:
        return None
    try:
        names = parse_metric_list(text)
    except InputError as exc:
        raise InputError(f"--metrics: {exc}") from None
    for name in names:
        spec = METRIC_CONFIG[name]
        if spec.stream != "account" or spec.period != "day":
            raise InputError(
                f"--metrics: {name} is not a daily account metric (what --metrics picks); the"
                f" {spec.stream} stream's values show with --streams {spec.stream}, without"
                " --metrics"
            )
    return names


async def _build(
    db: Store,
    days: int,
    until: date | None,
    user: UUID | None,
    metrics: Sequence[str] | None,
    streams: Sequence[str] | None,
) -> Report:
    from igsync.report import build_report

    async with db as store:
        return await build_report(
            store, days=days, until=until, u_id=user, metrics=metrics, streams=streams
        )


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def _tables(result: Report) -> list[RenderableType]:
    """The period once, then each account: a heading line, its metrics (when the report
    holds any of its account metrics) and its other streams' tables. Headings are lines of
    their own, not table titles or captions, which rich wraps to the table's width."""
    from rich.table import Table
    from rich.text import Text

    from igsync.report import sparkline

    shown: list[RenderableType] = []
    if result.accounts:
        shown.append(
            Text(
                f"{result.since} … {result.until}; change: mean per day vs"
                f" {result.previous_since} … {result.previous_until}"
            )
        )
    for account in result.accounts:
        shown.append(Text(f"\naccount {account.account_id} (user {account.u_id})", style="bold"))
        if account.metrics:
            table = Table()
            table.add_column("metric")
            table.add_column("latest", justify="right")
            table.add_column("on")
            table.add_column("change", justify="right")
            table.add_column("oldest → newest", no_wrap=True)
            for series in account.metrics:
                change = "-" if series.change_pct is None else f"{series.change_pct:+.1f}%"
                table.add_row(
                    series.metric,
                    _number(series.latest),
                    str(series.latest_date or "-"),
                    change,
                    Text(f"│{sparkline(series.values)}│"),
                )
            shown.append(table)
        shown.extend(_extras(account))
    return shown


def _extras(account: AccountReport) -> list[Table]:
    from rich.table import Table

    found = []
    if account.audience:
        table = Table(title=f"audience of {account.account_id} (newest snapshot, top 3)")
        for name in ("metric", "breakdown", "captured", "top values"):
            table.add_column(name)
        for b in account.audience:
            top = ", ".join(f"{label} {value:,}" for label, value in b.top[:3])
            table.add_row(b.metric, f"{b.breakdown} ({b.timeframe})", str(b.captured_on), top)
        found.append(table)
    for title, items in (("top media", account.top_media), ("top stories", account.top_stories)):
        if not items:
            continue
        table = Table(title=f"{title} of {account.account_id}")
        for name in ("media", "type", "posted (UTC)", "metric", "value"):
            table.add_column(name, justify="right" if name == "value" else "left")
        for m in items:
            table.add_row(
                m.media_id,
                m.media_product_type or "",
                (m.timestamp or "")[:16],
                m.metric,
                f"{m.value:,}",
            )
        found.append(table)
    return found
