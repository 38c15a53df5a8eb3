"""Rendering: rich tables on stdout, progress and logs on stderr, JSON through the models."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO
from uuid import uuid4

from pydantic import BaseModel

from igsync.cli import _stdout
from igsync.cli._progress import SyncProgress
from igsync.redact import redact

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console
    from rich.table import Table

    from igsync.catalogue import MetricListing
    from igsync.cli._logs import LogFormat
    from igsync.demo import DemoReport
    from igsync.models import AccountInfo, FetchResult, InsightRow, RefreshReport, SyncReport

#: stdout's width in columns when it is not a terminal
PIPED_WIDTH = 200

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
    from rich.markup import escape

    return escape(redact(text))


def _surely_no_terminal(stream: TextIO) -> bool:
    """True when rich's `Console.is_terminal` could only say False for `stream`: neither
    TTY_COMPATIBLE nor FORCE_COLOR set (either can make a pipe a terminal for rich) and not a
    TTY (rich 15 `Console.is_terminal`). Then a command needs no console from rich, whose
    import is a tenth of a `sync-all --json` start; otherwise rich decides."""
    if "TTY_COMPATIBLE" in os.environ or "FORCE_COLOR" in os.environ:
        return False
    stream = getattr(stream, "rich_proxied_file", stream)
    try:
        return not stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed: rich says False too
        return True


def _stream(stderr: bool) -> TextIO:
    """The standard stream itself, as rich's console for it would write to it (behind a live
    display's proxy, the file it proxies)."""
    stream = sys.stderr if stderr else sys.stdout
    return getattr(stream, "rich_proxied_file", stream)


def _silence(stream: TextIO) -> None:
    """Point `stream`'s file descriptor at /dev/null: once its reader is gone, nothing later
    (Python's own flush at exit included) trips over the closed pipe."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


class ErrSink:
    """stderr as whole lines: log records, the summary line, above a live progress bar on a
    terminal. Never padded nor wrapped; a reader that left (`2>&1 | head`) ends the lines,
    never the work. `console` None: stderr is no terminal, and its lines go to it as they
    are."""

    def __init__(self, console: Console | None) -> None:
        self.console = console
        self.gone = False

    def line(self, text: str) -> None:
        if self.gone:
            return
        try:
            if self.console is not None and self.console.is_terminal:
                # rich's low-level write: no markup, no wrapping, and a live bar stays below
                self.console.out(text, highlight=False)
            else:
                file = _stream(stderr=True) if self.console is None else self.console.file
                file.write(text + "\n")
                file.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.gone = True
            _silence(sys.stderr)


class Output:
    """Where a command's words go, decided once from --json, --quiet, -v and --log-format."""

    def __init__(
        self,
        *,
        json_mode: bool,
        quiet: bool,
        verbose: int,
        log_format: LogFormat | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.log_format: LogFormat = log_format or "text"
        #: stderr is a terminal (rich's answer, asked only when it could be one)
        self.err_tty = not _surely_no_terminal(sys.stderr) and self.err.is_terminal
        self.err_sink = ErrSink(self.err if self.err_tty else None)
        #: the reader of stdout went away (`| head`): nothing more is written there
        self.reader_gone = False
        # Progress and logs for a person at a terminal; off one (cron), logs only when -v or
        # --log-format asks for them.
        self.chatty = not quiet and (self.err_tty or verbose > 0 or log_format is not None)
        # One summary line on stderr at the end of a long run, unless the report's own footer
        # is already on the same terminal: cron's one line, and what stays after the bar goes.
        self.summarize = not quiet and not (self.err_tty and not json_mode and self.out.is_terminal)
        from igsync.cli._logs import setup_logging

        setup_logging(
            self.err_sink if self.chatty else None, verbose=verbose, log_format=self.log_format
        )

    @functools.cached_property
    def out(self) -> Console:
        """rich's console for stdout (tables, text), made when first used: machine output
        (--json, NDJSON) goes to stdout itself."""
        from igsync.cli._consoles import StdoutConsole

        console = StdoutConsole(highlight=False)
        if not console.is_terminal:
            # Piped or redirected: rich would squeeze tables into 80 columns. A table takes
            # only the width it needs; this is room for the widest (accounts list's full ids
            # beside a last sync: 175 columns) whole, for grep and for reading in a file.
            console.width = PIPED_WIDTH
        return console

    @functools.cached_property
    def err(self) -> Console:
        """rich's console for stderr (the progress bar, a spinner, errors), made when first
        used."""
        from rich.console import Console

        return Console(stderr=True, highlight=False)

    @contextlib.contextmanager
    def status(self, text: str) -> Iterator[None]:
        """A spinner on stderr while work runs, when someone is watching."""
        if self.chatty and self.err_tty:
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

    @staticmethod
    def json_text(item: BaseModel) -> str:
        """`item` as the (redacted) JSON text `emit_json` prints for it inside a document:
        what `sync-all --json` keeps of each result as its account ends, instead of the
        result itself, so that the run holds only what it prints and renders it meanwhile."""
        return redact(json.dumps(item.model_dump(mode="json"), ensure_ascii=False))

    def emit_json_with(self, document: BaseModel, field: str, texts: Sequence[str]) -> None:
        """`document` as exactly one JSON document whose `field` is the list of `texts` (each
        from `json_text`): the text `emit_json` would print had `field` held those items."""
        data = document.model_dump(mode="json")
        mark = f"igsync-{uuid4().hex}"
        data[field] = mark
        head, tail = redact(json.dumps(data, ensure_ascii=False)).split(f'"{mark}"')

        def write() -> None:
            file = _stream(stderr=False)
            file.write(head + "[")
            for number, text in enumerate(texts):
                file.write(f", {text}" if number else text)
            file.write("]" + tail + "\n")

        self._to_stdout(write)

    def emit_line(self, data: BaseModel | dict[str, Any]) -> None:
        """One NDJSON line on stdout, flushed at once so that a reader sees it as it happens."""
        self._write_json(
            data.model_dump(mode="json") if isinstance(data, BaseModel) else data, flush=True
        )

    def _write_json(self, data: Any, *, flush: bool = False) -> None:
        line = redact(json.dumps(data, ensure_ascii=False)) + "\n"

        def write() -> None:
            file = _stream(stderr=False)
            file.write(line)
            if flush:
                file.flush()

        self._to_stdout(write)

    def _to_stdout(self, write: Callable[[], None]) -> None:
        """Run one write to stdout. A reader that stopped reading (`| head`) ends the output,
        never the work (DESIGN §4): every account is still synced and logged, silently."""
        if self.reader_gone:
            return
        try:
            write()
        except (BrokenPipeError, ConnectionResetError):
            self.reader_gone = True
            _silence(sys.stdout)
        except OSError as exc:  # a full disk, a closed stdout: said once, by main(), exit 1
            self.reader_gone = True
            _stdout.note(exc)

    def flush_stdout(self) -> None:
        """Flush stdout now, so that a reader gone meanwhile is noticed here, not at exit."""
        self._to_stdout(sys.stdout.flush)

    @contextlib.contextmanager
    def progress(self, text: str) -> Iterator[SyncProgress]:
        """A counted bar on stderr (done/failed of N, rows, rate, ETA) when someone watches."""
        if not (self.chatty and self.err_tty):
            yield SyncProgress(None)
            return
        from igsync.cli._progress import sync_bar

        with sync_bar(self.err, text) as bar:
            yield SyncProgress(bar)

    def summary_line(self, message: str, fields: dict[str, Any]) -> None:
        """The one line a cron run leaves on stderr (a JSON object with --log-format json)."""
        if not self.summarize:
            return
        if self.log_format == "json":
            record = {
                "time": datetime.now(UTC).isoformat(),
                "level": "INFO",
                "logger": "igsync.cli",
                "message": message,
                **fields,
            }
            self.err_sink.line(redact(json.dumps(record, ensure_ascii=False)))
        else:
            self.err_sink.line(redact(message))

    def write(self, text: str) -> None:
        """Text on stdout as it is (SQL): no markup, no wrapping."""

        def write() -> None:
            _stream(stderr=False).write(text)

        self._to_stdout(write)

    def print(self, *objects: Any, soft_wrap: bool | None = None) -> None:
        """Rich text or tables on stdout; `soft_wrap=True`: one line however long."""
        self._to_stdout(lambda: self.out.print(*objects, soft_wrap=soft_wrap))

    def error(self, message: str) -> None:
        self.err.print(f"[red]igsync: {shown(message)}[/red]", soft_wrap=True, markup=True)


_METRIC_PREFIX = re.compile(r"([a-z][a-z0-9_]*): (.+)", re.DOTALL)


def collapse_errors(errors: Sequence[str]) -> list[str]:
    """An account's errors for a person to read: metrics that failed with the same error share
    one line (`reach, views: <error>`), in the order first seen.

    FetchResult.errors keeps one string per failed metric (DESIGN §5, the JSON contract); a
    missing account fails every metric with the same long Graph error, which a person needs
    once. An error that is another one with context in front (`could not learn the day keys:
    <error>`) joins that one's line.
    """
    groups: dict[str, list[str]] = {}
    for error in errors:
        match = _METRIC_PREFIX.fullmatch(error)
        metric, text = (match[1], match[2]) if match else ("", error)
        groups.setdefault(text, []).append(metric)
    for text in list(groups):
        shorter = [t for t in groups if t != text and text.endswith(f": {t}")]
        if shorter:
            groups[min(shorter, key=len)] += groups.pop(text)
    lines = []
    for text, metrics in groups.items():
        names = ", ".join(dict.fromkeys(m for m in metrics if m))
        lines.append(f"{names}: {text}" if names else text)
    return lines


def fetch_table(result: FetchResult) -> Table:
    from rich.table import Table

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
    lines += [f"[red]error: {shown(e)}[/red]" for e in collapse_errors(result.errors)]
    if result.sync_log_error:
        lines.append(f"[red]{shown(result.sync_log_error)}[/red]")
    return lines


def metrics_table(lines: Sequence[MetricListing]) -> Table:
    """The catalogue: current metrics, then retired ones with what to ask instead."""
    from rich.table import Table

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
    for line in lines:  # after every current metric, as the retired ones are
        for form in line.retired_forms:
            status = f"retired {form.retired_in}" if form.retired_in else "retired"
            table.add_row(
                line.name,
                f"[dim]{status}[/dim]",
                form.metric_type,
                *("-",) * 4,  # period, breakdowns, timeframes, logins
                "",
                "-",
                "the other form",
            )
    return table


def report_table(report: SyncReport, zones: dict[str, str] | None = None) -> Table:
    """One line per account; the zone column only where zones are known (the demo's)."""
    from rich.table import Table

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
    if not report.results and report.stopped is None:
        output.print(
            "no Instagram accounts in user_tokens (or none in this shard): nothing to sync. "
            "Add one with `igsync accounts add`; sync-all does not use IG_ACCOUNT_ID."
        )
        return
    output.print(report_table(report))
    dry = " (dry run: nothing written)" if any(r.dry_run for r in report.results) else ""
    report_footer(output, report, f", {report.total_errors} errors", dry)


def sync_summary(report: SyncReport, *, dry_run: bool) -> tuple[str, dict[str, Any]]:
    """sync-all's one line for a cron log, and its figures as fields for a JSON log line."""
    fields: dict[str, Any] = report.model_dump(mode="json", exclude={"results"})
    rate = report.accounts_total / report.duration_s if report.duration_s > 0 else 0.0
    fields["accounts_per_s"] = round(rate, 2)
    # a dry run writes nothing: what it did is fetch
    rows = (
        f"{report.total_fetched:,} rows fetched (dry run)"
        if dry_run
        else f"{report.total_inserted:,} rows written and verified"
    )
    message = (
        f"igsync sync-all: {report.accounts_ok:,}/{report.accounts_total:,} accounts ok, "
        f"{report.accounts_failed:,} failed, {rows}, "
        f"{report.total_errors:,} errors, in {report.duration_s:.2f} s ({rate:.1f} accounts/s)"
    )
    if report.accounts_skipped:
        message += (
            f"; {report.accounts_skipped:,} skipped: claimed by another run, syncing them or"
            " killed before it released them (each one's note says until when)"
        )
    if report.sync_logs_failed:
        message += f"; {report.sync_logs_failed:,} account(s) have no instagram_sync_logs row"
    if report.stopped is not None:
        message += (
            f"; run stopped: {report.stopped} ({report.accounts_not_attempted:,} account(s)"
            " not attempted)"
        )
    if not report.accounts_total:
        message += "; no accounts to sync"
    return message, fields


def report_footer(output: Output, report: SyncReport, after_rows: str, after_time: str) -> None:
    """One line of totals, then one line per error, each named by its account."""
    skipped = (
        f" ({report.accounts_skipped:,} skipped: being synced by another run)"
        if report.accounts_skipped
        else ""
    )
    # thousands separated, as in the summary line on stderr
    output.print(
        f"{report.accounts_ok:,}/{report.accounts_total:,} accounts ok{skipped}, "
        f"{report.total_inserted:,} rows written and verified{after_rows}, "
        f"in {report.duration_s:.2f} s{after_time}"
    )
    for r in report.results:
        if r.attempted:  # the accounts not attempted share one line, below
            for e in collapse_errors(r.errors):
                output.print(f"[red]{r.account_id}: {shown(e)}[/red]", soft_wrap=True)
    if report.stopped is not None:
        output.print(
            f"[red]run stopped: {shown(report.stopped)}; {report.accounts_not_attempted:,}"
            " account(s) not attempted (nothing was sent to Meta for them)[/red]",
            soft_wrap=True,  # one line, for grep, however long
        )
    if report.sync_logs_failed:
        output.print(
            f"[red]{report.sync_logs_failed} account(s) have no instagram_sync_logs row: "
            f"{shown(report.sync_log_error or '')}[/red]",
            soft_wrap=True,
        )


def values_table(rows: Sequence[InsightRow], metrics: Sequence[str]) -> Table:
    """One line per account and day: every metric of a day shares one UTC end_time key."""
    from rich.table import Table

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


def demo_render(
    output: Output, demo: DemoReport, metrics: Sequence[str], demo_path: Path | None = None
) -> None:
    """The demo's tables and footer; `demo_path` is the demo database (None: --db's)."""
    output.print(report_table(demo.report, demo.zones))
    output.print(values_table(demo.rows, metrics))
    written: Counter[str] = Counter()
    for result in demo.report.results:
        written.update(result.streams_written)
    if set(written) - {"account"}:
        output.print(
            "rows per stream: " + ", ".join(f"{name} {n:,}" for name, n in written.items())
        )
    where = " in the --db database" if demo_path is None else f" in {demo_path}"
    report_footer(output, demo.report, where, "")
    if demo_path is not None:
        output.print("see them: igsync report --demo (charts: igsync report --demo --html r.html)")


def accounts_table(infos: Sequence[AccountInfo]) -> Table:
    from rich.table import Table

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
        "last sync (UTC)",
    ):
        # the ids are what `accounts remove --user` and `fetch --user` take: never cut; the
        # last sync is one fact, grep-able on its row
        whole = {"user": 36, "account": 17}.get(col)
        table.add_column(
            col,
            justify="right" if col == "days left" else "left",
            no_wrap=whole is not None or col == "last sync (UTC)",
            min_width=whole,
        )
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
            _last_sync(i),
        )
    problems = [shown(i.problem) for i in infos if i.problem]
    if problems:
        # one line per unusable row, under the table: what is wrong and how to fix it
        table.caption = "\n".join(problems)
        table.caption_justify = "left"
    return table


def _last_sync(info: AccountInfo) -> str:
    """`2026-11-30 06:00 ok, 12 rows`, or `none` for an account without a recent sync log."""
    if info.last_sync_at is None:
        return "none"
    style = {"ok": "green", "partial": "yellow", "failed": "red"}[info.last_sync_status or "failed"]
    return (
        f"{info.last_sync_at:%Y-%m-%d %H:%M} [{style}]{info.last_sync_status}[/],"
        f" {info.last_sync_rows} rows"
    )


def refresh_table(report: RefreshReport) -> Table:
    from rich.table import Table

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
