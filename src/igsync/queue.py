"""`sync-all` beyond one machine: one job per account on a PostgreSQL job queue (issue 12).

The queue is procrastinate's (an optional extra, `igsync[queue]`): jobs live in PostgreSQL
tables next to (or apart from) the igsync ones, any number of `igsync worker` processes on any
machines take them with `FOR UPDATE SKIP LOCKED`, and a worker's heartbeat tells when it died.

    enqueue_accounts   one `igsync.sync_account` job per account; its `queueing_lock` keeps a
                       second one from being queued while one waits, its `lock` keeps two from
                       running at once
    run_worker         runs jobs; every job is `sync-all` for one account (claims included, so
                       a cron `sync-all` and the workers never sync one account twice); a
                       periodic task puts back the jobs of workers whose heartbeat stopped
    schedule           (optional) a cron expression: the workers enqueue every account on it,
                       so no cron is needed (procrastinate periodic tasks, each tick deferred
                       once whatever the number of workers)

Why procrastinate (DESIGN: a well-kept library over our own code): async on psycopg 3, which
igsync already uses; per-job `lock` and `queueing_lock`; retries; periodic tasks deduplicated
across workers; worker heartbeats with stalled-job lookup (3.x). Job arguments hold a user and
an account id and the window, never a token: workers read tokens from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

from pydantic import BaseModel, computed_field

from igsync.claims import Claims
from igsync.config import check_postgres_url
from igsync.errors import ConfigError, IgsyncError, StoreConfigError, StoreError
from igsync.graph import GraphClient
from igsync.models import FetchResult, UserToken
from igsync.store import Store, iter_tokens
from igsync.sync import RunContext, record
from igsync.tokens import AppCredentials
from igsync.window import plan_window

if TYPE_CHECKING:
    import procrastinate

    from igsync.sync_all import Shard

log = logging.getLogger(__name__)

#: the procrastinate queue of igsync's jobs
QUEUE = "igsync"
SYNC_TASK = "igsync.sync_account"
#: seconds without a worker heartbeat after which its jobs are put back (procrastinate's
#: default stalled-worker timeout)
STALLED_AFTER_S = 30.0
#: jobs deferred at once by `sync-all --enqueue`, and the queue's pool size
DEFER_AT_ONCE = 8


class JobWindow(BaseModel):
    """What a job syncs besides its account: sync-all's window and selection (JSON)."""

    days: int | None = None
    since: date | None = None
    until: date | None = None
    streams: list[str] | None = None
    metrics: list[str] | None = None


class EnqueueReport(BaseModel):
    """The outcome of `sync-all --enqueue`."""

    accounts_total: int
    enqueued: int
    #: a job for the account was already waiting (its queueing lock): not queued twice
    already_queued: int
    #: rows igsync cannot use (no account id, or a u_id that is not a UUID): no job
    not_queued: int


#: what became of a job's account
JobOutcome = Literal["ok", "failed", "skipped", "gone"]


class WorkerReport(BaseModel):
    """What one `igsync worker` ran, from its start to its stop (its sync logs say more)."""

    #: account jobs this worker ran (each one account's sync)
    jobs: int = 0
    accounts_ok: int = 0
    accounts_failed: int = 0
    #: another run was syncing the account: left to it
    accounts_skipped: int = 0
    #: the account's user_tokens row was gone by the time its job ran
    accounts_gone: int = 0
    total_inserted: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success(self) -> bool:
        """True when no job's account failed."""
        return self.accounts_failed == 0

    def add(self, result: FetchResult | None) -> JobOutcome:
        """Count one job's result (None: its row was gone); what became of its account."""
        self.jobs += 1
        outcome: JobOutcome
        if result is None:
            self.accounts_gone += 1
            return "gone"
        if result.skipped:
            self.accounts_skipped += 1
            outcome = "skipped"
        elif result.success:
            self.accounts_ok += 1
            outcome = "ok"
        else:
            self.accounts_failed += 1
            outcome = "failed"
        self.total_inserted += result.total_inserted
        return outcome

    def add_error(self) -> None:
        """Count a job that raised before its account had a result (its store failed)."""
        self.jobs += 1
        self.accounts_failed += 1


def account_lock(u_id: UUID | str, account_id: str) -> str:
    """The procrastinate lock and queueing lock of one account's jobs."""
    return f"igsync-account:{u_id}:{account_id}"


def queue_url(database_url: str | None, configured: str | None) -> str:
    """The PostgreSQL URL of the queue: IGSYNC_QUEUE_URL, else the store's when it is
    PostgreSQL. Raises ConfigError (exit 2) otherwise: SQLite and Supabase's REST API cannot
    hold the queue."""
    if configured:
        # a set IGSYNC_QUEUE_URL is the queue, never passed over for the store's database
        if not configured.startswith(("postgresql://", "postgres://")):
            raise ConfigError("IGSYNC_QUEUE_URL must be a postgresql:// URL")
        return check_postgres_url(configured, "IGSYNC_QUEUE_URL")
    if database_url and database_url.startswith(("postgresql://", "postgres://")):
        return database_url
    raise ConfigError(
        "the job queue needs PostgreSQL: use a postgresql:// database, or set IGSYNC_QUEUE_URL"
        " to one (with Supabase: its database's connection string)"
    )


_QUEUE_RLS = """
do $$
declare
    name text;
begin
    for name in
        select c.relname from pg_class c
        where c.relnamespace = current_schema()::regnamespace and c.relkind = 'r'
            and c.relname like 'procrastinate%'
    loop
        execute format('alter table %I enable row level security', name);
    end loop;
end
$$;
"""


@dataclass
class Runtime:
    """What a worker's jobs share: the store, the Graph client, the app's credentials."""

    store: Store
    graph: GraphClient
    app: AppCredentials | None
    stalled_after_s: float = STALLED_AFTER_S
    #: the jobs run so far
    report: WorkerReport = field(default_factory=WorkerReport)


class AccountFailed(IgsyncError):
    """A job's account was synced and failed (its sync log says why): the job ends `failed`."""


def make_app(
    url: str,
    runtime: Runtime | None = None,
    *,
    schedule: str | None = None,
    window: JobWindow | None = None,
) -> procrastinate.App:
    """The procrastinate app on the queue at `url`: igsync's tasks, and with `schedule` (a
    cron expression, UTC) a periodic task that enqueues every account with `window`.

    `runtime` is what jobs run with (a worker's); an app that only enqueues needs none.
    Raises ConfigError when the `queue` extra is not installed.
    """
    try:
        import procrastinate
    except ImportError:
        raise ConfigError(
            "the job queue needs procrastinate, the queue extra: uv tool install '.[queue]' in"
            " the igsync checkout"
        ) from None

    # Supabase's transaction pooler has no prepared statements (as for the store).
    connector = procrastinate.PsycopgConnector(
        conninfo=url,
        kwargs={"prepare_threshold": None},
        min_size=1,
        max_size=DEFER_AT_ONCE,
    )
    app = procrastinate.App(connector=connector)

    @app.task(name=SYNC_TASK, queue=QUEUE, pass_context=False)
    async def sync_account(*, u_id: str, account_id: str, window: dict[str, Any]) -> None:
        if runtime is None:
            raise ConfigError("this igsync app only enqueues; run jobs with `igsync worker`")
        try:
            result = await sync_one(runtime, UUID(u_id), account_id, JobWindow(**window))
        except Exception:
            runtime.report.add_error()  # procrastinate ends the job failed
            raise
        outcome = runtime.report.add(result)
        if result is not None:
            log.info("account %s: %s, %d rows", account_id, outcome, result.total_inserted)
            if outcome == "failed":
                # the job's status says what its sync log says (procrastinate marks a job
                # whose task raised `failed`; igsync's jobs are not retried)
                raise AccountFailed(f"account {account_id}: {'; '.join(result.errors)}")

    stalled_after = runtime.stalled_after_s if runtime else STALLED_AFTER_S
    # procrastinate 3.x: a worker's jobs stay `doing` after it died; its heartbeat says so.
    # The documented remedy is a periodic task that puts them back (get_stalled_jobs with
    # seconds_since_heartbeat, then retry_job). Every third of the timeout, seconds column last.
    every = max(1, int(stalled_after // 3))

    @app.periodic(cron=f"* * * * * */{every}")
    @app.task(name="igsync.retry_stalled_jobs", queue=QUEUE, pass_context=False)
    async def retry_stalled_jobs(timestamp: int) -> None:
        await put_back_stalled_jobs(app, stalled_after)

    if schedule is not None:

        @app.periodic(cron=schedule)
        @app.task(name="igsync.enqueue_all", queue=QUEUE, pass_context=False)
        async def enqueue_all(timestamp: int) -> None:
            if runtime is None:
                return
            report = await enqueue_accounts(app, runtime.store, window or JobWindow())
            log.info("scheduled run: %d accounts enqueued", report.enqueued)

    return app


async def put_back_stalled_jobs(app: procrastinate.App, stalled_after_s: float) -> int:
    """Put the jobs of workers whose heartbeat stopped `stalled_after_s` ago back in the
    queue; how many were stalled.

    A stalled job whose account was queued again meanwhile (`--enqueue`, a schedule: the
    queueing lock admits one waiting job per account) cannot wait beside it: it is ended
    `failed` instead, which frees the account's lock for the waiting one (retrying it would
    break the queueing lock at every tick, and the account would never sync again).
    """
    from procrastinate.exceptions import UniqueViolation
    from procrastinate.jobs import Status

    stalled = list(
        await app.job_manager.get_stalled_jobs(
            queue=QUEUE, task_name=SYNC_TASK, seconds_since_heartbeat=stalled_after_s
        )
    )
    for job in stalled:
        try:
            await app.job_manager.retry_job(job)
            log.warning("job %s (%s): its worker stopped; retrying it", job.id, job.lock)
        except UniqueViolation:
            await app.job_manager.finish_job(job, status=Status.FAILED, delete_job=False)
            log.warning(
                "job %s (%s): its worker stopped, and the account is queued again: that job"
                " runs instead",
                job.id,
                job.lock,
            )
    return len(stalled)


async def ensure_schema(app: procrastinate.App) -> None:
    """Create procrastinate's tables unless they exist, one process at a time, with RLS on
    (no policy: only their owner and BYPASSRLS roles such as Supabase's service role use
    them)."""
    connector: Any = app.connector
    async with connector.pool.connection() as conn, conn.transaction():
        await conn.execute("select pg_advisory_xact_lock(hashtext('igsync queue schema'))")
        cursor = await conn.execute("select to_regclass('procrastinate_jobs') is not null")
        row = await cursor.fetchone()
        if row is not None and row[0]:
            return
        await conn.execute(app.schema_manager.get_schema())
        # Supabase serves every table of `public` to `anon` and `authenticated` through its
        # REST API, with every privilege: RLS without a policy shuts them out, as for the
        # igsync tables. The owner (the role that made them, which runs the workers) is not
        # subject to it.
        await conn.execute(_QUEUE_RLS)


async def enqueue_accounts(
    app: procrastinate.App, store: Store, window: JobWindow, *, shard: Shard | None = None
) -> EnqueueReport:
    """Defer one SYNC_TASK job per usable row of `user_tokens` (of `shard`)."""
    from procrastinate.exceptions import AlreadyEnqueued

    total = enqueued = already = bad = 0
    task = app.tasks[SYNC_TASK]
    args = window.model_dump(mode="json")

    async def defer(token: UserToken, account_id: str) -> bool:
        """True when deferred, False when the account's job was already waiting."""
        lock = account_lock(token.u_id, account_id)
        try:
            await task.configure(lock=lock, queueing_lock=lock).defer_async(
                u_id=str(token.u_id), account_id=account_id, window=args
            )
        except AlreadyEnqueued:
            return False
        return True

    # Each job its own locks, so no batch insert: DEFER_AT_ONCE defers in flight instead, each
    # one insert and commit on a pooled connection (a commit's fsync is most of its time).
    pending: list[tuple[UserToken, str]] = []

    async def flush() -> None:
        nonlocal enqueued, already
        done = await asyncio.gather(*(defer(t, a) for t, a in pending))
        enqueued += sum(done)
        already += len(done) - sum(done)
        pending.clear()

    async for token in iter_tokens(store):
        if shard is not None and not shard.holds(token):
            continue
        total += 1
        if not isinstance(token, UserToken) or token.account_id is None:
            bad += 1
            continue
        pending.append((token, token.account_id))
        if len(pending) >= DEFER_AT_ONCE:
            await flush()
    await flush()
    return EnqueueReport(
        accounts_total=total, enqueued=enqueued, already_queued=already, not_queued=bad
    )


async def sync_one(
    runtime: Runtime, u_id: UUID, account_id: str, window: JobWindow
) -> FetchResult | None:
    """One account as `sync-all` syncs it, claim included; None when the row is gone."""
    from igsync.sync_all import _gather, _isolated  # sync_all's own per-account steps

    store = runtime.store
    rows = [t for t in await store.list_tokens(u_id=u_id) if t.account_id == account_id]
    if not rows:
        log.info("account %s of user %s: no user_tokens row any more", account_id, u_id)
        return None
    token = rows[0]
    plan = plan_window(
        datetime.now(UTC).astimezone(), days=window.days, since=window.since, until=window.until
    )
    ctx = RunContext.create(
        runtime.graph,
        store,
        plan=plan,
        streams=_list(window.streams),
        metrics=_list(window.metrics),
        app=runtime.app,
    )
    # A claim that lapses before the job counts as stalled: killed at K, the worker's claim
    # (renewed every s/6) is gone by K + s/2, while its job is seen stalled no sooner than
    # K + 2s/3 (heartbeats every s/3, stalled after s), so the retried job finds its account
    # free instead of skipping it.
    claims = Claims(store, ctx.run_id, ttl_s=runtime.stalled_after_s / 2)
    async with claims.renewing():
        skipped = await _isolated(ctx, token, claims.check(token, plan.requested))
        if skipped is not None:
            return skipped
        try:
            done = await _isolated(ctx, token, _gather(ctx, token))
            if not isinstance(done, FetchResult):
                done = await _isolated(ctx, token, record(ctx, done), done.started_at)
            return done
        finally:
            await claims.release(token)


def _list(values: Sequence[str] | None) -> list[str] | None:
    return None if values is None else list(values)


#: seconds the queue's first connection may take (as the store's own connect_timeout)
QUEUE_CONNECT_TIMEOUT_S = 10


@contextlib.asynccontextmanager
async def _opened(app: procrastinate.App, url: str) -> AsyncIterator[None]:
    """`app` open on the queue at `url`, its tables there; the queue's database errors as one
    line each (StoreConfigError, exit 2, when it cannot be reached or used; StoreError
    otherwise), never a traceback. One direct connection first: procrastinate's pool would
    retry a missing database or a wrong password for 30 s, then raise PoolTimeout."""
    import psycopg
    from procrastinate.exceptions import ConnectorException

    from igsync.store.postgres import error_line

    try:
        probe = await psycopg.AsyncConnection.connect(url, connect_timeout=QUEUE_CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise StoreConfigError(
            f"the job queue cannot connect: {error_line(exc)}; check IGSYNC_QUEUE_URL (or the"
            " database URL, which holds the queue when it is not set)"
        ) from None
    await probe.close()
    try:
        async with app.open_async():
            await ensure_schema(app)
            yield
    except (psycopg.Error, ConnectorException) as exc:
        cause = exc.__cause__ if isinstance(exc, ConnectorException) else exc
        said = error_line(cause if isinstance(cause, psycopg.Error) else exc)
        if isinstance(cause, psycopg.Error) and cause.sqlstate == "42501":
            raise StoreConfigError(
                f"the job queue: {said}; its tables (procrastinate_*) are made by the first"
                " --enqueue or worker: run that as the igsync tables' owner, then run as"
                " their owner or grant this role them and their sequences (README, 'A cron"
                " role on PostgreSQL')"
            ) from None
        raise StoreError(f"the job queue: {said}") from None


async def run_worker(
    runtime: Runtime,
    url: str,
    *,
    concurrency: int,
    until_empty: bool = False,
    schedule: str | None = None,
    window: JobWindow | None = None,
) -> WorkerReport:
    """Run igsync's jobs from the queue at `url` until stopped (SIGINT/SIGTERM finish the
    jobs in hand), or with `until_empty` until no job waits; what they did (`runtime.report`).

    Before the first job, the jobs of workers that died are put back (`put_back_stalled_jobs`;
    a waiting worker also does it periodically, an `until_empty` one only then). Raises
    StoreError when an `until_empty` worker stopped with jobs still waiting (the queue's
    database stopped answering on the way, say): a one-off run that left work is no success.
    """
    app = make_app(url, runtime, schedule=schedule, window=window)
    async with _opened(app, url):
        await put_back_stalled_jobs(app, runtime.stalled_after_s)
        await app.run_worker_async(
            queues=[QUEUE],
            concurrency=concurrency,
            wait=not until_empty,
            update_heartbeat_interval=runtime.stalled_after_s / 3,
            stalled_worker_timeout=runtime.stalled_after_s,
        )
        if until_empty:
            waiting = list(await app.job_manager.list_jobs_async(queue=QUEUE, status="todo"))
            if waiting:
                raise StoreError(
                    f"the worker stopped with {len(waiting)} job(s) still queued (did the"
                    " queue's database stop answering?); run `igsync worker --until-empty`"
                    " again"
                )
    return runtime.report


async def enqueue(
    url: str, store: Store, window: JobWindow, *, shard: Shard | None = None
) -> EnqueueReport:
    """`sync-all --enqueue`: open the queue (creating its tables if missing) and defer."""
    app = make_app(url)
    async with _opened(app, url):
        return await enqueue_accounts(app, store, window, shard=shard)
