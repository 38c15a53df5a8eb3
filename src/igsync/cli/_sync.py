"""`igsync sync-all`: every account of `user_tokens`, for cron."""

from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from igsync.cli._common import (
    DaysOpt,
    JsonOpt,
    MetricsOpt,
    NoBatchOpt,
    QuietOpt,
    SinceOpt,
    StreamsOpt,
    UntilOpt,
    VerboseOpt,
    globals_of,
    graph_client,
    make_output,
    open_db,
    preload_tls,
    run,
    selection,
    window_plan,
)
from igsync.cli._common import settings as load

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Sequence

    from igsync.config import Settings
    from igsync.graph import GraphClient
    from igsync.models import FetchResult, SyncReport
    from igsync.store import Store
    from igsync.sync_all import Shard
    from igsync.window import WindowPlan


def sync_all(
    ctx: typer.Context,
    concurrency: Annotated[
        int,
        typer.Option(
            min=1,
            max=256,
            help="Accounts fetched at the same time. Batched, their calls share Graph batch "
            "requests of about a quarter of them; calls of different accounts share a batch "
            "only with IG_APP_ID and IG_APP_SECRET set (the app token carries the batch).",
        ),
    ] = 64,
    days: DaysOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    streams: StreamsOpt = None,
    metrics: MetricsOpt = None,
    shard: Annotated[
        str | None,
        typer.Option(metavar="K/N", help="Only the K-th of N stable partitions of the accounts."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Fetch and report, write nothing.")
    ] = False,
    no_batch: NoBatchOpt = False,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Exit 0 when this role sees no account at all (default: exit 1, naming the "
            "database and the likely causes).",
        ),
    ] = False,
    json_: JsonOpt = False,
    ndjson: Annotated[
        bool,
        typer.Option(
            "--ndjson", help='One FetchResult per line as each account ends, then {"summary": …}.'
        ),
    ] = False,
    enqueue: Annotated[
        bool,
        typer.Option(
            "--enqueue",
            help="Queue one job per account for `igsync worker` instead of syncing here "
            "(needs PostgreSQL and igsync[queue]).",
        ),
    ] = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Fetch and store every Instagram account in user_tokens, each isolated from the others.

    Only user_tokens rows are synced: the IG_ACCOUNT_ID/IG_LONG_TOKEN fallback is not used.
    Writes one instagram_sync_logs row per account. An account another run is syncing is
    skipped and reported so (not a failure). Exit 0 when every account succeeded or was
    skipped, 1 when any failed or when this role sees no account at all (unless
    --allow-empty; a shard that holds none of the accounts is fine), 2 on bad input. Ctrl-C
    or SIGTERM stops it cleanly (the accounts in flight finish, the rest are reported not
    attempted: exit 1); a second one stops it at once. A reader
    that stops reading (`| head -1`) ends the output, never the work: every account is still
    synced and logged, and the exit code is the run's. On a terminal a bar counts the
    accounts; off one (cron), one summary line goes to stderr at the end (-q: none). Examples:

    \b
        igsync sync-all --days 7 --concurrency 8
        igsync sync-all --ndjson | jq -c 'select(.success == false)'
        */30 * * * * igsync sync-all --ndjson >> /var/log/igsync.ndjson
        igsync sync-all --shard 1/3 --json   # worker 1 of 3 (2/3, 3/3 elsewhere)
    """
    preload_tls()  # on a thread, while settings, the store and the rest load
    import asyncio

    from igsync.cli._render import sync_all_render, sync_summary
    from igsync.errors import IgsyncError, InputError, NothingToSyncError
    from igsync.sync_all import parse_shard, store_connections

    if ndjson and (json_ or globals_of(ctx).json):
        raise InputError("--json and --ndjson: choose one")
    out = make_output(ctx, json_ or ndjson, quiet, verbose)
    part = parse_shard(shard) if shard is not None else None
    settings = load()
    chosen, plan = selection(settings, streams, metrics), window_plan(days, since, until)
    db = open_db(
        ctx,
        settings,
        access="write" if dry_run else "create",  # a dry run makes no file
        connections=store_connections(concurrency),
    )
    if enqueue:
        from igsync.cli._queue import enqueue_all

        if dry_run or ndjson:
            raise InputError("--enqueue: not with --dry-run or --ndjson")
        enqueue_all(ctx, out, settings, db, chosen, (days, since, until), part)
        return
    # --json keeps each result as the text it prints, rendered as its account ends
    printed: list[str] = []
    stop = _Stop()
    with out.progress("syncing") as bar:

        def said(message: str) -> None:
            if not out.quiet:
                out.err_sink.line(f"igsync: {message}")

        def on_result(result: FetchResult) -> None:
            if ndjson:
                out.emit_line(result)
            elif out.json_mode:
                printed.append(out.json_text(result))
            bar.finished(result)

        try:
            report = run(
                _sync(
                    settings,
                    db,
                    chosen,
                    plan,
                    concurrency,
                    part,
                    dry_run,
                    batch=not no_batch,
                    keep=not out.json_mode,  # (ND)JSON: only the printed text is held, or none
                    on_result=on_result,
                    on_queued=bar.queued,
                    stop=stop,
                    on_stop=said,
                )
            )
        except asyncio.CancelledError:
            if stop.cancelled_by is None:
                raise  # not ours to explain
            name = stop.cancelled_by.name
            raise IgsyncError(
                f"stopped at once ({name} twice): the accounts in flight were dropped and"
                " their claims ended; no report, the sync logs hold what was written"
            ) from None
    empty = _empty_run(ctx, settings, report, part, allow_empty)
    if empty is not None and empty.problem:
        report = report.model_copy(update={"success": False})
    if ndjson:
        out.emit_line({"summary": report.model_dump(mode="json", exclude={"results"})})
    elif out.json_mode:
        out.emit_json_with(report, "results", printed)
    elif empty is not None:
        if not empty.problem:
            out.print(empty.message)
    else:
        sync_all_render(out, report)
    out.flush_stdout()
    if empty is not None and empty.problem:
        raise NothingToSyncError(empty.message)
    message, fields = sync_summary(report, dry_run=dry_run)
    out.summary_line(message, fields)
    if not report.success:
        raise typer.Exit(1)


@dataclass(frozen=True)
class _Empty:
    message: str
    #: True: exit 1 (no account at all and no --allow-empty); False: say so, exit 0
    problem: bool


def _empty_run(
    ctx: typer.Context, settings: Settings, report: SyncReport, shard: Shard | None, allowed: bool
) -> _Empty | None:
    """What to say about a run that synced no account (None: it synced some)."""
    from igsync.cli._common import config_sources, db_url
    from igsync.doctor import database_origin, empty_run_problem, shown_database, store_kind

    if report.accounts_total:
        return None
    visible = report.accounts_visible or 0
    if visible and shard is not None:
        return _Empty(
            f"shard {shard.index}/{shard.count} holds none of the {visible} accounts this role"
            " sees: nothing to sync here (the other shards have them)",
            problem=False,
        )
    if visible:  # the rows are there, this run took none of them (they changed meanwhile)
        return _Empty(
            f"this run synced none of the {visible} accounts this role sees", problem=False
        )
    url = db_url(ctx, settings)
    origin = database_origin(settings, config_sources(), globals_of(ctx).db)
    database = shown_database(url, settings)
    if allowed:
        return _Empty(
            f"nothing to sync: {database} (from {origin}) shows this role no account"
            " (--allow-empty)",
            problem=False,
        )
    fallback = bool(settings.ig_account_id and settings.ig_long_token)
    message = empty_run_problem(database, origin, store_kind(url), env_account=fallback)
    return _Empty(message, problem=True)


async def _sync(
    settings: Settings,
    db: Store,
    chosen: tuple[Sequence[str] | None, Sequence[str] | None],
    plan: WindowPlan,
    concurrency: int,
    shard: Shard | None,
    dry_run: bool,
    *,
    batch: bool,
    keep: bool,
    on_result: Callable[[FetchResult], None],
    on_queued: Callable[[int, bool], None],
    stop: _Stop,
    on_stop: Callable[[str], None],
) -> SyncReport:
    from igsync.sync_all import sync_all as sync_every_account
    from igsync.tokens import app_credentials

    async with (
        db as store,
        graph_client(settings, batch=batch, accounts=concurrency) as graph,
        _stopping(stop, on_stop, graph),
    ):
        report = await sync_every_account(
            graph,
            store,
            streams=chosen[0],
            metrics=chosen[1],
            plan=plan,
            app=app_credentials(settings),
            concurrency=concurrency,
            shard=shard,
            dry_run=dry_run,
            on_result=on_result,
            keep_results=keep,
            on_queued=on_queued,
            stop=stop.reason,
        )
        if not report.accounts_total:
            # One count query tells "none here" (another shard's) from "none at all".
            report.accounts_visible = await store.count_tokens()
        return report


class _Stop:
    """The signal that asked a run to stop, once one did, and the one that cancelled it, if
    a second came. Such a run exits 1, as any run with accounts not synced (DESIGN §4 fixes
    the exit codes)."""

    def __init__(self) -> None:
        self.signal: signal.Signals | None = None
        self.cancelled_by: signal.Signals | None = None

    def reason(self) -> str | None:
        if self.signal is None:
            return None
        return f"interrupted ({self.signal.name}): no more accounts were started"


#: a signal this soon after the first is the same stop delivered twice, not a second one:
#: `uv run` passes SIGTERM on to its child always, and SIGINT when its stdin is not a
#: terminal (after 200 ms; uv's commands/run.rs, astral-sh/uv#13925), though the child had
#: it already whenever the whole process group was signalled (`timeout`, systemd,
#: `kill -- -PGID`, Ctrl-C in a pipeline)
SAME_STOP_S = 1.0


@contextlib.asynccontextmanager
async def _stopping(
    stop: _Stop, on_stop: Callable[[str], None], graph: GraphClient
) -> AsyncIterator[None]:
    """SIGINT and SIGTERM (Ctrl-C, `kill`, a scheduler's stop) end the run cleanly: the
    accounts in flight finish and are written, within a round trip (their calls wait no
    more to retry: `GraphClient.stop_waiting`), the rest are reported not attempted and
    their claims released; `stop` says which came. A second signal, `SAME_STOP_S` or more
    after the first, cancels the run at once (sync_all ends its claims in one call; the CLI
    says so, exit 1), and a third finds Python's own handlers: Ctrl-C raises
    KeyboardInterrupt, SIGTERM kills."""
    import asyncio

    loop = asyncio.get_running_loop()
    run = asyncio.current_task()
    signals = (signal.SIGINT, signal.SIGTERM)
    first = 0.0  # when the first signal came (the loop's clock, seconds)

    def heard(number: signal.Signals) -> None:
        nonlocal first
        if stop.signal is not None:
            return  # the same signal twice in one turn of the loop, before `again` took over
        first = loop.time()
        stop.signal = number
        graph.stop_waiting()
        for each in signals:
            loop.add_signal_handler(each, again, each)
        on_stop(
            f"{number.name}: finishing the accounts in flight, starting no more"
            f" ({number.name} again to stop at once)"
        )

    def again(number: signal.Signals) -> None:
        if loop.time() - first < SAME_STOP_S:
            return
        stop.cancelled_by = number
        for each in signals:
            loop.remove_signal_handler(each)
        if run is not None:
            run.cancel()

    try:
        for number in signals:
            loop.add_signal_handler(number, heard, number)
    except NotImplementedError:  # Windows' event loops: Ctrl-C keeps Python's own behaviour
        yield
        return
    try:
        yield
    finally:
        for number in signals:
            loop.remove_signal_handler(number)
