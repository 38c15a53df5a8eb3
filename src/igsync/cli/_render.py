"""Rendering: rich tables on stdout, progress and logs on stderr, JSON through the models."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from igsync.redact import RedactingFilter, redact

if TYPE_CHECKING:
    from igsync.catalogue import MetricListing
    from igsync.demo import DemoReport
    from igsync.models import AccountInfo, FetchResult, InsightRow, RefreshReport, SyncReport

_STATUS_STYLE = {
    "ok": "green",
    "expiring": "yellow",
    "expired": "red",
    "needs_reauth": "red",
    "invalid": "red",
}


def shown(text: str) -> str:
    """Outside text (Graph and store messages) as rich markup: redacted, and never parsed.

    Graph errors end in `[code 190/467]`, which rich would take for a tag and drop.
    """
    return escape(redact(text))


class _Stdout(Console):
    """rich's console for stdout, handing a closed pipe back to `Output._to_stdout`.

    rich's own answer to a reader that left is `SystemExit(1)` (its documented hook, meant to
    be overridden): a run whose every account succeeded would exit 1.
    """

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


class Output:
    """Where a command's words go, decided once from --json, --quiet and -v."""

    def __init__(self, *, json_mode: bool, quiet: bool, verbose: int) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.out: Console = _Stdout(highlight=False)
        if not self.out.is_terminal:
            # Piped or redirected: rich would squeeze tables into 80 columns.
            self.out.width = 160
        self.err = Console(stderr=True, highlight=False)
        #: the reader of stdout went away (`| head`): nothing more is written there
        self.reader_gone = False
        # Progress and logs only for a person at a terminal, unless -v asks for them.
        self.chatty = not quiet and (self.err.is_terminal or verbose > 0)
        self._setup_logging(verbose)

    def _setup_logging(self, verbose: int) -> None:
        from rich.logging import RichHandler

        handler: logging.Handler
        if self.chatty:
            handler = RichHandler(console=self.err, show_path=False, show_time=verbose > 1)
            handler.addFilter(RedactingFilter())
        else:
            handler = logging.NullHandler()
        level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
        # stamina logs each scheduled retry as a warning: same handler, same rules as ours.
        for name in ("igsync", "stamina"):
            logger = logging.getLogger(name)
            logger.handlers[:] = [handler]
            logger.propagate = False
            logger.setLevel(level)

    @contextlib.contextmanager
    def status(self, text: str) -> Iterator[None]:
        """A spinner on stderr while work runs, when someone is watching."""
        if self.chatty and self.err.is_terminal:
            with self.err.status(text):
                yield
        else:
            yield

    def emit_json(self, document: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
        """Exactly one JSON document on stdout, through the same redaction as everything else."""
        if isinstance(document, BaseModel):
            self._write_json(document.model_dump(mode="json"))
        elif isinstance(document, dict):
            self._write_json(document)
        else:
            self._write_json([item.model_dump(mode="json") for item in document])

    def emit_line(self, data: BaseModel | dict[str, Any]) -> None:
        """One NDJSON line on stdout, flushed at once so that a reader sees it as it happens."""
        self._write_json(
            data.model_dump(mode="json") if isinstance(data, BaseModel) else data, flush=True
        )

    def _write_json(self, data: Any, *, flush: bool = False) -> None:
        line = redact(json.dumps(data, ensure_ascii=False)) + "\n"

        def write() -> None:
            self.out.file.write(line)
            if flush:
                self.out.file.flush()

        self._to_stdout(write)

    def _to_stdout(self, write: Callable[[], None]) -> None:
        """Run one write to stdout. A reader that stopped reading (`| head`) ends the output,
        never the work (DESIGN §4): every account is still synced and logged, silently."""
        if self.reader_gone:
            return
        try:
            write()
        except BrokenPipeError:
            self.reader_gone = True
            # Point stdout at /dev/null, so that nothing later (Python's own flush at exit
            # included) trips over the closed pipe.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)

    @contextlib.contextmanager
    def progress(self, text: str) -> Iterator[Callable[[FetchResult], None]]:
        """A bar on stderr counting finished accounts, when someone is watching."""
        if not (self.chatty and self.err.is_terminal):
            yield lambda _result: None
            return
        from rich.progress import Progress

        with Progress(console=self.err, transient=True) as bar:
            task = bar.add_task(text, total=None)
            failed = 0

            def advance(result: FetchResult) -> None:
                nonlocal failed
                failed += not result.success
                bar.update(task, advance=1, description=f"{text} ({failed} failed)")

            yield advance

    def print(self, *objects: Any) -> None:
        self._to_stdout(lambda: self.out.print(*objects))

    def error(self, message: str) -> None:
        self.err.print(f"[red]igsync: {shown(message)}[/red]", soft_wrap=True, markup=True)


def fetch_table(result: FetchResult) -> Table:
    table = Table(title=f"Instagram account {result.account_id}", title_justify="left")
    table.add_column("metric")
    table.add_column("rows written", justify="right")
    table.add_column("rows fetched", justify="right")
    for metric, fetched in sorted(result.metrics_fetched.items()):
        table.add_row(metric, str(result.metrics_inserted.get(metric, 0)), str(fetched))
    return table


def fetch_summary(result: FetchResult) -> list[str]:
    window = f"{result.window.since} → {result.window.until}" if result.window else "no window"
    verb = "fetched (dry run)" if result.dry_run else "written and verified"
    rows = sum(result.metrics_fetched.values()) if result.dry_run else result.total_inserted
    lines = [f"{rows} rows {verb} for {window} in {result.duration_s:.2f} s"]
    lines += [f"[dim]note: {shown(n)}[/dim]" for n in result.notes]
    lines += [f"[red]error: {shown(e)}[/red]" for e in result.errors]
    if result.sync_log_error:
        lines.append(f"[red]{shown(result.sync_log_error)}[/red]")
    return lines


def metrics_table(lines: Sequence[MetricListing]) -> Table:
    """The catalogue: current metrics, then retired ones with what to ask instead."""
    table = Table(title="Metrics (choose with --metrics or IGSYNC_METRICS; details: --json)")
    table.add_column("metric", no_wrap=True)
    for col in ("status", "metric_type", "period", "breakdowns", "timeframes", "logins"):
        table.add_column(col)
    for col in ("default", "stream"):
        table.add_column(col)
    table.add_column("instead", no_wrap=True)
    for line in lines:
        retired = line.status == "retired"
        status = f"retired {line.retired_in}" if retired and line.retired_in else line.status
        instead = line.replacement or ("none" if retired else "")
        if retired and line.replacement == line.name:  # only one form was retired
            instead = "the other form"
        table.add_row(
            line.name,
            f"[dim]{status}[/dim]" if retired else status,
            line.metric_type or ("all" if retired else "-"),
            line.period or "-",
            ", ".join(line.breakdowns) or "-",
            ", ".join(line.timeframes) or "-",
            ("both" if len(line.logins) == 2 else ", ".join(line.logins)) or "-",
            "yes" if line.default else "",
            line.stream or "-",
            instead,
        )
    return table


def report_table(report: SyncReport, zones: dict[str, str] | None = None) -> Table:
    """One line per account; the zone column only where zones are known (the demo's)."""
    table = Table(title="Accounts", title_justify="left")
    columns = ("account", "zone", "window", "rows", "errors", "seconds")
    for col in columns if zones is not None else tuple(c for c in columns if c != "zone"):
        table.add_column(col, justify="right" if col in ("rows", "errors", "seconds") else "left")
    for r in report.results:
        window = f"{r.window.since} → {r.window.until}" if r.window else "-"
        zone = () if zones is None else (zones.get(str(r.account_id), "-"),)
        table.add_row(
            str(r.account_id),
            *zone,
            window,
            str(r.total_inserted),
            str(r.total_errors),
            f"{r.duration_s:.2f}",
        )
    return table


def sync_all_render(output: Output, report: SyncReport) -> None:
    """The report table, one line of totals, and one line per error."""
    if not report.results:
        output.print(
            "no Instagram accounts in user_tokens (or none in this shard): nothing to sync. "
            "Add one with `igsync accounts add`; sync-all does not use IG_ACCOUNT_ID."
        )
        return
    output.print(report_table(report))
    dry = " (dry run: nothing written)" if any(r.dry_run for r in report.results) else ""
    report_footer(output, report, f", {report.total_errors} errors", dry)


def report_footer(output: Output, report: SyncReport, after_rows: str, after_time: str) -> None:
    """One line of totals, then one line per error, each named by its account."""
    skipped = (
        f" ({report.accounts_skipped} skipped: being synced by another run)"
        if report.accounts_skipped
        else ""
    )
    output.print(
        f"{report.accounts_ok}/{report.accounts_total} accounts ok{skipped}, "
        f"{report.total_inserted} rows written and verified{after_rows}, "
        f"in {report.duration_s:.2f} s{after_time}"
    )
    for r in report.results:
        for e in r.errors:
            output.print(f"[red]{r.account_id}: {shown(e)}[/red]")
    if report.sync_logs_failed:
        output.print(
            f"[red]{report.sync_logs_failed} account(s) have no instagram_sync_logs row: "
            f"{shown(report.sync_log_error or '')}[/red]"
        )


def values_table(rows: Sequence[InsightRow], metrics: Sequence[str]) -> Table:
    """One line per account and day: every metric of a day shares one UTC end_time key."""
    from igsync.local_day import day_label

    table = Table(title="Stored values (one key per account and day)", title_justify="left")
    for col in ("account", "day", "end_time (UTC)", *metrics):
        table.add_column(col, justify="right" if col in metrics else "left")
    grid: dict[tuple[str, Any], dict[str, int | None]] = defaultdict(dict)
    for row in rows:
        grid[(row.account_id, row.end_time)][row.metric] = row.value
    for (account, end_time), values in sorted(grid.items()):
        table.add_row(
            account,
            str(day_label(end_time)),
            end_time.strftime("%Y-%m-%d %H:%M"),
            *("—" if values.get(m) is None else str(values[m]) for m in metrics),
        )
    return table


def demo_render(output: Output, demo: DemoReport, metrics: Sequence[str]) -> None:
    output.print(report_table(demo.report, demo.zones))
    output.print(values_table(demo.rows, metrics))
    written: Counter[str] = Counter()
    for result in demo.report.results:
        written.update(result.streams_written)
    if set(written) - {"account"}:
        output.print(
            "rows per stream: " + ", ".join(f"{name} {n:,}" for name, n in written.items())
        )
    where = (
        " in the --db database"
        if demo.kept
        else " in a throwaway database (pass --db sqlite:///demo.db to keep it)"
    )
    report_footer(output, demo.report, where, "")


def accounts_table(infos: Sequence[AccountInfo]) -> Table:
    table = Table(title="Instagram accounts", title_justify="left")
    for col in (
        "user",
        "account",
        "source",
        "kind",
        "expires (UTC)",
        "days left",
        "status",
        "token",
    ):
        table.add_column(col, justify="right" if col == "days left" else "left")
    for i in infos:
        table.add_row(
            shown(i.user_id or "(any user)"),
            shown(i.account_id or "-"),
            i.source,
            i.token_kind,
            f"{i.expires_at:%Y-%m-%d %H:%M}" if i.expires_at else "unknown",
            "-" if i.days_left is None else str(i.days_left),
            f"[{_STATUS_STYLE[i.status]}]{i.status}[/]",
            i.token_hint,
        )
    problems = [shown(i.problem) for i in infos if i.problem]
    if problems:
        # one line per unusable row, under the table: what is wrong and how to fix it
        table.caption = "\n".join(problems)
        table.caption_justify = "left"
    return table


def refresh_table(report: RefreshReport) -> Table:
    title = "Token refresh (dry run)" if report.dry_run else "Token refresh"
    table = Table(title=title, title_justify="left")
    for col in ("user", "account", "outcome", "detail"):
        table.add_column(col)
    for r in report.refreshed:
        expiry = f"now expires {r.expires_at:%Y-%m-%d}" if r.expires_at else "expiry not given"
        table.add_row(r.user_id, str(r.account_id), "[green]refreshed[/]", expiry)
    for w in report.would_refresh:
        expiry = f"expires {w.expires_at:%Y-%m-%d}" if w.expires_at else ""
        table.add_row(w.user_id, str(w.account_id), "would refresh", expiry)
    for s in report.skipped:
        table.add_row(s.user_id, str(s.account_id), "skipped", shown(s.reason))
    for f in report.failed:
        table.add_row(f.user_id, str(f.account_id), "[red]failed[/]", shown(f.error))
    return table
