"""Fetch one account's insights and store them: the job behind `fetch`, `demo` and `sync-all`.

The order matters (GRAPH_API.md §1-2): time_series metrics first, because their end_times are
the day keys; then each total_value metric one day at a time under those same keys, so every
metric of a day shares one (u_id, account_id, metric, end_time) key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid4

from igsync.config import Settings
from igsync.errors import ErrorKind, GraphError, InputError, StoreError
from igsync.graph import GraphClient, MetricValues
from igsync.models import (
    METRIC_CONFIG,
    FetchResult,
    InsightRow,
    MetricSpec,
    MetricType,
    SyncLog,
    SyncReport,
    UserToken,
    Window,
)
from igsync.redact import redact
from igsync.store import Store
from igsync.window import WindowPlan, chunks, day_label, day_request_range

log = logging.getLogger(__name__)

#: concurrent Graph requests for one account; each still counts against its rate limit
PER_ACCOUNT_CONCURRENCY = 4
#: the metric asked for day keys when only total_value metrics are wanted
_KEY_PROBE = "reach"
#: a grouped request failing with these kinds is retried one metric at a time (DESIGN §7)
_PER_METRIC_KINDS = (ErrorKind.INVALID, ErrorKind.PERMISSION)


@dataclass(frozen=True)
class Account:
    """Who to fetch for and with what: from `user_tokens`, or the env fallback."""

    user_id: UUID
    account_id: str
    token: str
    source: str  # "db" or "env"


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
        return Account(user_id, env_id, env_token.get_secret_value(), "env")
    raise InputError(
        f"no Instagram account for user {user_id}: add a user_tokens row for it, "
        "or set IG_ACCOUNT_ID and IG_LONG_TOKEN (see .env.example)"
    )


def account_from_token(row: UserToken) -> Account:
    """The account a `user_tokens` row names (rows without an account id are not fetchable)."""
    if row.account_id is None:
        raise InputError(f"user {row.u_id} has a token without an account id; add one")
    return Account(row.u_id, row.account_id, row.access_token.get_secret_value(), "db")


@dataclass
class _Collected:
    """What one fetch gathered, before it is written."""

    # metric -> end_time -> value (None: Meta had no data for that day)
    values: dict[str, dict[datetime, int | None]] = field(default_factory=dict)
    # metric -> ranges (since, until] it answered for; rows are only made inside them
    answered: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    keys: set[datetime] = field(default_factory=set)
    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def fail(self, metric: str, error: GraphError) -> None:
        self.errors.setdefault(metric, f"{metric}: {error}")

    def covered(self, metric: str, key: datetime) -> bool:
        return any(since < key <= until for since, until in self.answered.get(metric, ()))


class _Fetcher:
    """Talks to the Graph API for one account; isolates each metric's failures."""

    def __init__(self, graph: GraphClient, account: Account) -> None:
        self.graph = graph
        self.account = account
        self.limit = asyncio.Semaphore(PER_ACCOUNT_CONCURRENCY)

    async def get(
        self, metrics: Sequence[str], metric_type: MetricType, since: datetime, until: datetime
    ) -> dict[str, MetricValues | GraphError]:
        """One grouped request; on a per-metric failure, one request per metric (DESIGN §7)."""
        try:
            async with self.limit:
                items = await self.graph.get_insights(
                    self.account.account_id,
                    self.account.token,
                    metrics=metrics,
                    metric_type=metric_type,
                    since=since,
                    until=until,
                )
        except GraphError as error:
            log.info("%s %s for %s: %s", metric_type, ",".join(metrics), until.date(), error)
            if error.kind == ErrorKind.AUTH:
                raise  # the token is bad for every metric: stop this account now
            if len(metrics) > 1 and error.kind in _PER_METRIC_KINDS:
                parts = await asyncio.gather(
                    *(self.get([m], metric_type, since, until) for m in metrics)
                )
                return {k: v for part in parts for k, v in part.items()}
            return dict.fromkeys(metrics, error)
        by_name = {item.name: item for item in items}
        # A metric left out of `data` had no data: an empty item, never a zero (§1).
        return {m: by_name.get(m) or MetricValues(name=m, period="day") for m in metrics}


async def _fetch_time_series(
    fetcher: _Fetcher, specs: Sequence[MetricSpec], plan: WindowPlan, now: datetime, out: _Collected
) -> None:
    groups: dict[tuple[datetime, datetime], list[str]] = {}
    for spec in specs:
        rng = plan.metric_range(spec, now)
        if rng is None:
            out.notes.append(f"{spec.name}: the API serves only its last {spec.lookback_days} days")
            continue
        if rng[0] > plan.since:
            out.notes.append(f"{spec.name}: window clamped to its last {spec.lookback_days} days")
        groups.setdefault(rng, []).append(spec.name)
    requests = [
        (names, since, until)
        for (start, end), names in groups.items()
        for since, until in chunks(start, end)
    ]
    answers = await asyncio.gather(
        *(fetcher.get(names, "time_series", since, until) for names, since, until in requests)
    )
    for (_, since, until), answer in zip(requests, answers, strict=True):
        for metric, result in answer.items():
            if isinstance(result, GraphError):
                out.fail(metric, result)
                continue
            out.answered.setdefault(metric, []).append((since, until))
            series = out.values.setdefault(metric, {})
            for point in result.points:
                if since < point.end_time <= until:
                    series[point.end_time] = point.value
                    out.keys.add(point.end_time)


async def _fetch_total_values(
    fetcher: _Fetcher,
    specs: Sequence[MetricSpec],
    keys: Sequence[datetime],
    known: Sequence[datetime],
    out: _Collected,
) -> None:
    """One request per day (all total_value metrics grouped), stored under that day's key.

    `known` is every day end seen, kept or not: the one before a key bounds its request.
    """
    previous = dict(zip(known[1:], known, strict=False))
    days = [(key, *day_request_range(key, previous.get(key))) for key in keys]
    names = [s.name for s in specs]
    answers = await asyncio.gather(
        *(fetcher.get(names, "total_value", since, until) for _, since, until in days)
    )
    for (key, since, until), answer in zip(days, answers, strict=True):
        for metric, result in answer.items():
            if isinstance(result, GraphError):
                out.fail(metric, result)
                continue
            out.answered.setdefault(metric, []).append((since, until))
            out.values.setdefault(metric, {})[key] = result.total


def _rows(
    account: Account, specs: Sequence[MetricSpec], keys: Sequence[datetime], out: _Collected
) -> list[InsightRow]:
    rows = []
    for spec in specs:
        series = out.values.get(spec.name, {})
        for key in keys:
            if out.covered(spec.name, key):
                rows.append(
                    InsightRow(
                        u_id=account.user_id,
                        account_id=account.account_id,
                        metric=spec.name,
                        metric_type=spec.metric_type,
                        period=spec.period,
                        end_time=key,
                        value=series.get(key),
                    )
                )
    return rows


async def fetch_account(
    graph: GraphClient,
    store: Store,
    account: Account,
    *,
    metrics: Sequence[str],
    plan: WindowPlan,
    dry_run: bool = False,
    now: datetime | None = None,
) -> FetchResult:
    """Fetch `metrics` for one account over `plan` and upsert them; never raises for a metric.

    Graph and store failures become entries of `errors`; the rows that could be fetched are
    stored all the same.
    """
    started = time.monotonic()
    started_at = datetime.now(UTC)
    now = (now or started_at).astimezone(UTC)
    specs = [METRIC_CONFIG[m] for m in metrics]
    series_specs = [s for s in specs if s.metric_type == "time_series"]
    total_specs = [s for s in specs if s.metric_type == "total_value"]
    out = _Collected()
    fetcher = _Fetcher(graph, account)
    try:
        # The day keys come from a time_series answer; ask reach just for them if need be.
        probe = [] if series_specs else [METRIC_CONFIG[_KEY_PROBE]]
        await _fetch_time_series(fetcher, series_specs or probe, plan, now, out)
        known = sorted(out.keys)
        keys = known if plan.keep_last is None else known[-plan.keep_last :]
        log.info("account %s: %d days to store", account.account_id, len(keys))
        if probe and _KEY_PROBE in out.errors:
            reason = out.errors.pop(_KEY_PROBE).removeprefix(f"{_KEY_PROBE}: ")
            for spec in total_specs:
                out.errors[spec.name] = f"{spec.name}: could not learn the day keys: {reason}"
        elif total_specs and keys:
            await _fetch_total_values(fetcher, total_specs, keys, known, out)
    except GraphError as error:  # AUTH: the token, not a metric, failed
        out.errors = {"token": f"token rejected by the Graph API: {error}"}
        keys = []
    if not keys and not out.errors:
        out.notes.append("the Graph API had no data for this window")
    rows = _rows(account, specs, keys, out)

    inserted: Counter[str] = Counter()
    if rows and not dry_run:
        try:
            confirmed = await store.upsert_insights(rows)
            inserted.update(r.metric for r in rows)
            log.info("account %s: %d rows written and verified", account.account_id, confirmed)
        except StoreError as error:
            out.errors["store"] = f"store: {error}"
    if dry_run:
        out.notes.append(f"dry run: {len(rows)} rows fetched, nothing written")
    errors = [redact(e) for e in out.errors.values()]
    window = Window(since=day_label(keys[0]), until=day_label(keys[-1])) if keys else plan.requested
    result = FetchResult(
        success=not errors,
        total_inserted=sum(inserted.values()),
        total_errors=len(errors),
        metrics_inserted=dict(inserted),
        metrics_fetched=dict(Counter(r.metric for r in rows)),
        errors=errors,
        account_id=account.account_id,
        user_id=str(account.user_id),
        window=window,
        duration_s=round(time.monotonic() - started, 3),
        dry_run=dry_run,
        notes=out.notes,
    )
    if not dry_run:
        await _log_run(store, result, account, started_at)
    return result


async def _log_run(
    store: Store, result: FetchResult, account: Account, started_at: datetime
) -> None:
    status = "ok" if result.success else ("partial" if result.total_inserted else "failed")
    entry = SyncLog(
        run_id=uuid4(),
        u_id=account.user_id,
        account_id=account.account_id,
        started_at=started_at,
        finished_at=datetime.now(UTC),
        status=status,
        total_inserted=result.total_inserted,
        total_errors=result.total_errors,
        errors=result.errors,
        token_refreshed=result.token_refreshed,
    )
    try:
        await store.write_sync_log(entry)
    except StoreError as error:
        log.warning("could not write the sync log: %s", error)


def summarize(results: Sequence[FetchResult], duration_s: float) -> SyncReport:
    """Roll per-account results into the report `sync-all` and `demo` print."""
    ok = sum(r.success for r in results)
    return SyncReport(
        success=ok == len(results),
        accounts_total=len(results),
        accounts_ok=ok,
        accounts_failed=len(results) - ok,
        total_inserted=sum(r.total_inserted for r in results),
        total_errors=sum(r.total_errors for r in results),
        duration_s=round(duration_s, 3),
        results=list(results),
    )
