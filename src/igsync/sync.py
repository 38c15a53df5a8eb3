"""Fetch one account's insights and store them: the job behind `fetch`, `demo` and `sync-all`.

Which account and token, the streams that gather under the token policy (`igsync.streams`,
`igsync.token_policy`), the verified write and the sync log.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid4

from igsync.config import Settings
from igsync.errors import InputError, StoreError
from igsync.graph import GraphClient, infer_token_kind
from igsync.local_day import LocalClock, day_label
from igsync.models import (
    Account,
    FetchResult,
    SyncLog,
    SyncReport,
    Window,
)
from igsync.redact import redact
from igsync.store import Store, dedupe_by_key
from igsync.store_health import StoreHealth
from igsync.streams import Stream, StreamOutcome, choose_streams
from igsync.token_policy import TokenPolicy
from igsync.tokens import AppCredentials, account_from_token
from igsync.window import WindowPlan

__all__ = [
    "Account",
    "Gathered",
    "RunContext",
    "account_from_token",
    "fetch_account",
    "gather_account",
    "record",
    "record_group",
    "sync_account",
]

log = logging.getLogger(__name__)


async def resolve_account(
    store: Store, settings: Settings, user_id: UUID, account_id: str | None = None
) -> Account:
    """The user's instagram row of `user_tokens`, else IG_ACCOUNT_ID/IG_LONG_TOKEN."""
    rows = [
        t
        for t in await store.list_tokens(u_id=user_id)
        if account_id is None or t.account_id == account_id
    ]
    if len(rows) > 1:
        ids = ", ".join(str(t.account_id) for t in rows)
        raise InputError(
            f"user {user_id} has several Instagram accounts ({ids}); pass --account-id"
        )
    if rows and rows[0].account_id:
        return account_from_token(rows[0])
    env_id, env_token = settings.ig_account_id, settings.ig_long_token
    if env_id and env_token and account_id in (None, env_id):
        secret = env_token.get_secret_value()
        # The env fallback has no stored kind: its shape tells (EAA… or IG…).
        return Account(user_id, env_id, secret, kind=infer_token_kind(secret) or "facebook_login")
    raise InputError(
        f"no Instagram account for user {user_id}: add a user_tokens row for it, "
        "or set IG_ACCOUNT_ID and IG_LONG_TOKEN (see .env.example)"
    )


@dataclass(frozen=True)
class RunContext:
    """What every account of a run shares: where to fetch from and store to, and how.

    `now` is UTC, fixed for the run when given (tests, reproducible windows); None takes the
    clock as each account starts. `health` trips when the store stops answering: from then on
    nothing more is written or sent to Meta for the run (igsync.store_health).
    """

    graph: GraphClient
    store: Store
    streams: Sequence[Stream]
    plan: WindowPlan
    app: AppCredentials | None = None
    dry_run: bool = False
    now: datetime | None = None
    run_id: UUID = field(default_factory=uuid4)
    health: StoreHealth = field(default_factory=StoreHealth)

    @classmethod
    def create(
        cls,
        graph: GraphClient,
        store: Store,
        *,
        plan: WindowPlan,
        streams: Sequence[str] | None = None,
        metrics: Sequence[str] | None = None,
        app: AppCredentials | None = None,
        dry_run: bool = False,
        now: datetime | None = None,
        run_id: UUID | None = None,
    ) -> RunContext:
        """A run of `streams` for `metrics`, as `igsync.streams.choose_streams` picks them.

        Raises InputError for an unknown stream, a retired or unknown metric, or a metric of a
        stream not chosen, before any request.
        """
        chosen = choose_streams(streams, metrics)
        return cls(graph, store, chosen, plan, app, dry_run, now, run_id or uuid4())


@dataclass
class Gathered:
    """One account's streams, gathered under the token policy and not yet written."""

    account: Account
    outcomes: list[StreamOutcome]
    #: "token: …" when the token policy ended the account before any stream answered
    token_error: str | None
    token_refreshed: bool
    notes: list[str]
    started: float
    started_at: datetime


async def gather_account(ctx: RunContext, account: Account) -> Gathered:
    """Every stream of `ctx` for one account, under the token policy; nothing is written but
    the token row (a refresh, or needs_reauth). AUTH from any stream ends them all. Once the
    store stopped answering (`ctx.health`), the streams not started are left out."""
    started, started_at = time.monotonic(), datetime.now(UTC)
    now = (ctx.now or started_at).astimezone(UTC)

    async def work(current: Account) -> list[StreamOutcome]:
        clock = LocalClock()  # learned afresh on every attempt: the streams run again
        outcomes = []
        for stream in ctx.streams:
            if ctx.health.reason is not None and not ctx.dry_run:
                break  # the store stopped answering: nothing more gathered could be kept
            outcomes.append(await stream.collect(ctx.graph, current, ctx.plan, now, clock))
        return outcomes

    auth = await TokenPolicy(ctx.graph, ctx.store, ctx.app, now, ctx.dry_run, work).run(account)
    return Gathered(
        account, auth.value or [], auth.error, auth.refreshed, auth.notes, started, started_at
    )


@dataclass
class _Draft:
    """One account's result while its writes are under way: what `record` and `record_group`
    share before and after them."""

    gathered: Gathered
    errors: list[str]
    notes: list[str]
    #: rows per metric of each outcome (`_counts`), in `gathered.outcomes` order
    counts: list[dict[str, int]]
    fetched: Counter[str]
    days: list[datetime]
    inserted: Counter[str] = field(default_factory=Counter)
    #: rows the store confirmed, per stream
    written: Counter[str] = field(default_factory=Counter)


def _draft(gathered: Gathered, plan: WindowPlan) -> _Draft:
    errors = [gathered.token_error] if gathered.token_error else []
    errors += [e for o in gathered.outcomes for e in o.errors]
    notes = ([plan.note] if plan.note else []) + gathered.notes
    notes += [n for o in gathered.outcomes for n in o.notes]
    counts = [_counts(outcome) for outcome in gathered.outcomes]
    fetched: Counter[str] = Counter()
    for count in counts:
        fetched.update(count)
    days = sorted({d for o in gathered.outcomes for d in o.days})
    if not days and not errors and not fetched:
        notes.append("the Graph API had no data for this window")
    return _Draft(gathered, errors, notes, counts, fetched, days)


def _result(ctx: RunContext, draft: _Draft) -> FetchResult:
    """The account's result once its writes are done (or not made: a dry run)."""
    account, days = draft.gathered.account, draft.days
    errors = [redact(e) for e in draft.errors]
    window = Window(since=day_label(days[0]), until=day_label(days[-1])) if days else None
    return FetchResult(
        success=not errors,
        total_inserted=sum(draft.inserted.values()),
        total_errors=len(errors),
        metrics_inserted=dict(draft.inserted),
        metrics_fetched=dict(draft.fetched),
        streams_written=dict(draft.written),
        errors=errors,
        account_id=account.account_id,
        user_id=str(account.user_id),
        token_refreshed=draft.gathered.token_refreshed,
        window=window or ctx.plan.requested,
        duration_s=round(time.monotonic() - draft.gathered.started, 3),
        dry_run=ctx.dry_run,
        notes=[redact(n) for n in draft.notes],
    )


def _started(gathered: Gathered) -> bool:
    """Whether anything went to Meta for the account (a stream, or its token's refresh)."""
    return bool(gathered.outcomes or gathered.token_error or gathered.token_refreshed)


async def record(ctx: RunContext, gathered: Gathered) -> FetchResult:
    """Upsert what `gather_account` gathered, verified, and log the run; the account's result
    (`not_attempted` when the store had stopped answering before its first stream).

    Never raises for a metric or a store failure: those are entries of `errors`, and the rows
    that could be fetched are stored all the same. Writes a sync-log row unless dry_run. Once
    the store stopped answering (`ctx.health`), nothing more is tried: each stream left is an
    error "store: not written: …", never counted as inserted.
    """
    account = gathered.account
    reason = ctx.health.reason
    if reason is not None and not _started(gathered) and not ctx.dry_run:
        # the store stopped answering before this account's first stream: nothing was sent
        # to Meta for it
        return not_attempted(ctx, account.account_id, str(account.user_id), reason)
    draft = _draft(gathered, ctx.plan)
    if ctx.dry_run:
        draft.notes.append(f"dry run: {draft.fetched.total()} rows fetched, nothing written")
        return _result(ctx, draft)
    for outcome, count in zip(gathered.outcomes, draft.counts, strict=True):
        if ctx.health.reason is not None:
            # another account's write found the store dead: waiting out this write's own
            # timeout would only delay the end of the run
            if any(outcome.table_rows):
                draft.errors.append(f"store: not written: {ctx.health.reason}")
            continue
        try:
            draft.written[outcome.stream] += await _write(ctx.store, outcome)
        except StoreError as error:
            ctx.health.saw(error)
            draft.errors.append(f"store: {error}")
            continue
        draft.inserted.update(count)
    left = [s.name for s in ctx.streams[len(gathered.outcomes) :]]
    if left and gathered.token_error is None and ctx.health.reason is not None:
        # gather_account stopped before these streams: the store had stopped answering
        draft.errors.append(f"store: not gathered ({', '.join(left)}): {ctx.health.reason}")
    result = _result(ctx, draft)
    log.info("%s", written_line(account.account_id, draft.written, result.errors))
    await write_run_log(ctx, result, gathered.started_at)
    return result


async def record_group(ctx: RunContext, group: Sequence[Gathered]) -> list[FetchResult] | None:
    """`record` for several accounts at once, in a few statements rather than a few per
    account: one upsert per table for all their rows, then all their sync logs in one
    `Store.write_sync_logs` (which on PostgreSQL, inside a session, also releases their
    claims). Returns their results, in `group` order, as `record` makes them when every write
    succeeds.

    Returns None when the store refused any of it (the error is in `ctx.health`): no sync
    log of the group was written, and some of its rows may be; the caller then records each
    account with `record`, whose upserts write those rows again as they were (the same keys
    and values), and whose errors say which account the store refuses. For a run that writes
    (not a dry run) while the store answers; raises nothing but what `record` would.
    """
    drafts = [_draft(gathered, ctx.plan) for gathered in group]
    # every account's rows in one outcome: `_write` upserts them a table at a time
    together = StreamOutcome("group")
    for draft in drafts:
        for outcome, count in zip(draft.gathered.outcomes, draft.counts, strict=True):
            # what each upsert of `record` would confirm: its rows, one per key
            draft.written[outcome.stream] += sum(
                len(dedupe_by_key(rows)) for rows in outcome.table_rows if rows
            )
            draft.inserted.update(count)
            for kept, rows in zip(together.table_rows, outcome.table_rows, strict=True):
                kept.extend(rows)  # in place: the lists are `together`'s own
    results = [_result(ctx, draft) for draft in drafts]
    try:
        await _write(ctx.store, together)
        await ctx.store.write_sync_logs(
            [
                _sync_log(ctx, result, draft.gathered.started_at)
                for draft, result in zip(drafts, results, strict=True)
            ]
        )
    except StoreError as error:
        ctx.health.saw(error)
        log.debug("%d accounts written together: %s; now one by one", len(group), error)
        return None
    for draft, result in zip(drafts, results, strict=True):
        log.info("%s", written_line(result.account_id, draft.written, result.errors))
    return results


def not_attempted(
    ctx: RunContext, account_id: str | None, user_id: str, reason: str
) -> FetchResult:
    """The failed result of an account never started because the store stopped answering or
    the Graph API could not be reached (`reason`): nothing was sent to Meta for it, and no
    sync-log row is written for it."""
    return FetchResult(
        success=False,
        total_inserted=0,
        total_errors=1,
        metrics_inserted={},
        errors=[redact(f"not attempted: {reason}")],
        account_id=account_id,
        user_id=user_id,
        window=ctx.plan.requested,
        duration_s=0.0,
        dry_run=ctx.dry_run,
        attempted=False,
    )


def unkept(result: FetchResult, error: StoreError) -> FetchResult:
    """`result` after the store lost what it wrote (its session's commit failed): a failure
    with nothing inserted, whose sync-log row was lost too. Results that wrote nothing (not
    attempted, skipped, a dry run) stay as they were."""
    if not result.attempted or result.skipped or result.dry_run:
        return result
    message = redact(f"store: not kept: {error}")
    return result.model_copy(
        update={
            "success": False,
            "total_inserted": 0,
            "metrics_inserted": {},
            "streams_written": {},
            "total_errors": result.total_errors + 1,
            "errors": [*result.errors, message],
            "sync_log_error": result.sync_log_error or message,
        }
    )


def written_line(account_id: str | None, written: Mapping[str, int], errors: Sequence[str]) -> str:
    """The log line of one account's writes, right for a failure too, e.g. `account 1784…:
    12 rows written and verified (account 9, audience 3)` or `account 1784…: 0 rows written
    and verified; failed with 1 error: store: database is locked`. `errors` must be redacted.
    """
    total = sum(written.values())
    line = f"account {account_id}: {total:,} row{'' if total == 1 else 's'} written and verified"
    streams = [f"{stream} {n:,}" for stream, n in written.items() if n]
    if len(streams) > 1:
        line += f" ({', '.join(streams)})"
    if errors:
        line += f"; failed with {len(errors)} error{'' if len(errors) == 1 else 's'}"
        line += f": {errors[0]}" + (" (and more)" if len(errors) > 1 else "")
    return line


def _counts(outcome: StreamOutcome) -> dict[str, int]:
    """Rows per metric of one stream, under the keys FetchResult counts them by: the metric's
    name for the account stream (as ever), "stream.metric" for the others, whose names repeat
    (media's reach is not the account's)."""
    prefix = "" if outcome.stream == "account" else f"{outcome.stream}."
    return {f"{prefix}{m.metric}": m.rows for m in outcome.metrics.values() if m.rows}


async def _write(store: Store, outcome: StreamOutcome) -> int:
    """Upsert one stream's rows, verified, table by table; how many rows the store confirmed.

    Raises StoreError at the first table that fails (the tables before it stay written).
    """
    confirmed = 0
    if outcome.rows:
        confirmed += await store.upsert_insights(outcome.rows)
    if outcome.audience:
        confirmed += await store.upsert_audience(outcome.audience)
    if outcome.media:
        confirmed += await store.upsert_media(outcome.media)
    if outcome.media_insights:
        confirmed += await store.upsert_media_insights(outcome.media_insights)
    return confirmed


async def sync_account(ctx: RunContext, account: Account) -> FetchResult:
    """`gather_account`, then `record`: one account fetched and stored; never raises for a
    metric (Graph and store failures are entries of `errors`). The writes share one store
    session (`Store.session`); the Graph calls before them hold no connection."""
    gathered = await gather_account(ctx, account)
    async with ctx.store.session():
        return await record(ctx, gathered)


async def fetch_account(
    graph: GraphClient,
    store: Store,
    account: Account,
    *,
    metrics: Sequence[str] | None = None,
    plan: WindowPlan,
    streams: Sequence[str] | None = None,
    app: AppCredentials | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    run_id: UUID | None = None,
) -> FetchResult:
    """Fetch `streams` and `metrics` (see `RunContext.create`) for one account over `plan` and
    upsert them; never raises for a metric. With app credentials the token is refreshed as
    DESIGN §4 says. Raises InputError for a bad stream or metric name, before any request.
    The env fallback account (`account.row` None, as token_policy takes it too) is named in
    the result's notes: its rows are stored under a user who has no row of their own.
    """
    ctx = RunContext.create(
        graph,
        store,
        plan=plan,
        streams=streams,
        metrics=metrics,
        app=app,
        dry_run=dry_run,
        now=now,
        run_id=run_id,
    )
    result = await sync_account(ctx, account)
    if account.row is None:
        note = (
            f"account {account.account_id} and its token from IG_ACCOUNT_ID/IG_LONG_TOKEN:"
            f" user {account.user_id} has no user_tokens row"
        )
        result = result.model_copy(update={"notes": [note, *result.notes]})
    return result


def _uuid_or_none(text: str | None) -> UUID | None:
    """A result's user id as the log's u_id; None for a row whose u_id is not a UUID (its
    error names the row)."""
    try:
        return None if text is None else UUID(text)
    except ValueError:
        return None


def _sync_log(ctx: RunContext, result: FetchResult, started_at: datetime) -> SyncLog:
    """The `instagram_sync_logs` row of `result` in the run `ctx` (its run_id and streams),
    finished now."""
    status = "ok" if result.success else ("partial" if result.total_inserted else "failed")
    return SyncLog(
        run_id=ctx.run_id,
        u_id=_uuid_or_none(result.user_id),
        account_id=result.account_id,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        status=status,
        total_inserted=result.total_inserted,
        total_errors=result.total_errors,
        errors=result.errors,
        token_refreshed=result.token_refreshed,
        streams=[s.name for s in ctx.streams],
    )


async def write_run_log(ctx: RunContext, result: FetchResult, started_at: datetime) -> None:
    """One `instagram_sync_logs` row for `result` in the run `ctx` (its run_id and streams); a
    store failure here is not raised: it is `result.sync_log_error`. Not tried once the store
    stopped answering (`ctx.health`)."""
    if ctx.health.reason is not None:
        result.sync_log_error = redact(f"sync log not written: {ctx.health.reason}")
        return
    try:
        await ctx.store.write_sync_logs([_sync_log(ctx, result, started_at)])
    except StoreError as error:
        ctx.health.saw(error)
        # the rows may be written; the record of the run is not: say so in the result and the
        # run's summary, not only in a log line -v would show
        result.sync_log_error = redact(f"sync log not written: {error}")
        log.warning("%s", result.sync_log_error)


class Tally:
    """Totals of a run of many accounts, kept as each result arrives.

    With `keep=False` no result is held (`sync-all --ndjson` prints each as it ends), so memory
    does not grow with the number of accounts; the report then has an empty `results`.
    """

    def __init__(self, *, keep: bool = True) -> None:
        self._keep = keep
        self._results: list[FetchResult] = []
        self.total = self.ok = self.inserted = self.errors = self.logs_failed = 0
        self.not_attempted = 0
        self.skipped = 0
        self.fetched = 0
        self.log_error: str | None = None

    def add(self, result: FetchResult) -> None:
        self.total += 1
        self.skipped += result.skipped
        self.ok += result.success and not result.skipped
        self.inserted += result.total_inserted
        self.fetched += sum(result.metrics_fetched.values())
        self.errors += result.total_errors
        self.not_attempted += not result.attempted
        if result.sync_log_error is not None:
            self.logs_failed += 1
            self.log_error = self.log_error or result.sync_log_error
        if self._keep:
            self._results.append(result)

    def report(self, duration_s: float, *, stopped: str | None = None) -> SyncReport:
        """The totals so far; `stopped` says why the run ended early (it then failed)."""
        return SyncReport(
            # another run syncing an account is not a failure of this one (igsync.claims)
            success=self.ok + self.skipped == self.total and stopped is None,
            accounts_total=self.total,
            accounts_ok=self.ok,
            accounts_failed=self.total - self.ok - self.skipped,
            total_inserted=self.inserted,
            total_errors=self.errors,
            duration_s=round(duration_s, 3),
            results=list(self._results),
            sync_logs_failed=self.logs_failed,
            sync_log_error=self.log_error,
            accounts_not_attempted=self.not_attempted,
            stopped=stopped,
            accounts_skipped=self.skipped,
            total_fetched=self.fetched,
        )


def summarize(results: Sequence[FetchResult], duration_s: float) -> SyncReport:
    """Roll per-account results into the report `sync-all` and `demo` print."""
    tally = Tally()
    for result in results:
        tally.add(result)
    return tally.report(duration_s)
