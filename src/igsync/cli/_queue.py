"""`igsync sync-all --enqueue` and `igsync worker`: the job queue (igsync.queue) from the CLI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from igsync.cli._common import (
    JsonOpt,
    QuietOpt,
    VerboseOpt,
    db_url,
    graph_client,
    make_output,
    open_db,
    preload_tls,
    run,
)
from igsync.cli._common import settings as load

if TYPE_CHECKING:
    from igsync.cli._render import Output
    from igsync.config import Settings
    from igsync.queue import EnqueueReport, WorkerReport
    from igsync.store import Store
    from igsync.sync_all import Shard


def _queue_url(ctx: typer.Context, settings: Settings) -> str:
    from igsync.queue import queue_url
    from igsync.redact import register_secret
    from igsync.store.postgres import _passwords

    configured = settings.igsync_queue_url
    url = queue_url(db_url(ctx, settings), configured.get_secret_value() if configured else None)
    for password in _passwords(url):
        register_secret(password)
    return url


def enqueue_all(
    ctx: typer.Context,
    out: Output,
    settings: Settings,
    db: Store,
    chosen: tuple[tuple[str, ...] | None, tuple[str, ...] | None],
    window: tuple[int | None, str | None, str | None],
    shard: Shard | None,
) -> None:
    """`sync-all --enqueue`: one job per account; prints an EnqueueReport. `window` is
    (--days, --since, --until) as typed; InputError for a date that is not YYYY-MM-DD."""
    from igsync.inputs import parse_day
    from igsync.queue import JobWindow, enqueue

    url = _queue_url(ctx, settings)
    days, since, until = window
    job_window = JobWindow(
        days=days,
        since=None if since is None else parse_day(since, "--since"),
        until=None if until is None else parse_day(until, "--until"),
        streams=None if chosen[0] is None else list(chosen[0]),
        metrics=None if chosen[1] is None else list(chosen[1]),
    )

    async def go() -> EnqueueReport:
        async with db as store:
            return await enqueue(url, store, job_window, shard=shard)

    r = run(go())
    if out.json_mode:
        out.emit_json(r)
    else:
        out.print(
            f"{r.enqueued} jobs enqueued for {r.accounts_total} accounts ({r.already_queued}"
            f" already queued, {r.not_queued} rows without a usable account); `igsync worker`"
            " runs them"
        )
        if r.already_queued and any(w is not None for w in window):
            # one waiting job per account (its queueing lock): this window did not replace it
            out.print(
                "the accounts already queued keep the window their job was queued with; run"
                " again once those jobs ran to queue this one"
            )
    if r.not_queued:
        raise typer.Exit(1)  # as sync-all fails for a row it cannot use


def worker(
    ctx: typer.Context,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Jobs (accounts) this worker runs at once.")
    ] = 8,
    until_empty: Annotated[
        bool, typer.Option("--until-empty", help="Exit once no job waits (CI, a one-off Job).")
    ] = False,
    schedule: Annotated[
        str | None,
        typer.Option(
            metavar="CRON",
            help="Also enqueue every account on this cron schedule (UTC), instead of cron.",
        ),
    ] = None,
    stalled_after: Annotated[
        float,
        typer.Option(
            min=3,
            metavar="SECONDS",
            help="A job whose worker sent no heartbeat for this long is retried elsewhere.",
        ),
    ] = 30.0,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    verbose: VerboseOpt = 0,
) -> None:
    """Run the jobs of `igsync sync-all --enqueue`: one account each, as sync-all syncs it.

    Start any number, on any machines, against the same queue (IGSYNC_QUEUE_URL, else the
    PostgreSQL database). Needs the queue extra: uv tool install '.[queue]'. When it stops
    (--until-empty, or SIGINT/SIGTERM) it prints what it ran: one line, or with --json a
    WorkerReport; --until-empty exits 1 when an account failed (its sync log says why).
    Examples:

        igsync worker --concurrency 16

        igsync worker --schedule '0 3 * * *'   # enqueue all daily, 03:00 UTC

        igsync worker --until-empty            # run what is queued, then exit
    """
    preload_tls()  # on a thread, while settings, the store and the rest load
    from igsync.queue import Runtime, run_worker
    from igsync.tokens import app_credentials

    out = make_output(ctx, json_, quiet, verbose)
    settings = load()
    url = _queue_url(ctx, settings)
    if schedule is not None:
        _check_cron(schedule)
    db = open_db(ctx, settings)

    async def go() -> WorkerReport:
        async with (
            db as store,
            graph_client(settings, batch=False, accounts=concurrency) as graph,
        ):
            runtime = Runtime(store, graph, app_credentials(settings), stalled_after)
            return await run_worker(
                runtime, url, concurrency=concurrency, until_empty=until_empty, schedule=schedule
            )

    report = run(go())
    if out.json_mode:
        out.emit_json(report)
    elif not out.quiet:
        out.print(
            f"{report.jobs} job(s): {report.accounts_ok} accounts ok, {report.accounts_failed}"
            f" failed, {report.accounts_skipped} skipped (another run had them),"
            f" {report.accounts_gone} without a user_tokens row; {report.total_inserted} rows"
        )
    if until_empty and not report.success:
        raise typer.Exit(1)  # a one-off run, as sync-all: an account failed


def _check_cron(schedule: str) -> None:
    from igsync.errors import InputError

    try:
        from croniter import croniter  # type: ignore[import-untyped] # comes with the extra
    except ImportError:
        return  # the queue extra is missing: make_app says so
    if not croniter.is_valid(schedule):
        raise InputError(f"--schedule {schedule!r}: not a cron expression, e.g. '0 3 * * *'")
