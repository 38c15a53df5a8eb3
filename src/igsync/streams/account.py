"""The `account` stream: an account's daily metrics, one row per metric and local day.

Rows go to `instagram_insights`, unique on (u_id, account_id, metric, end_time). The order of
requests matters (GRAPH_API.md §1-2): time_series metrics first, because their end_times are
the day keys; then each total_value metric one day at a time under those same keys, so every
metric of a day shares one key. Lookback is per metric (`MetricSpec.lookback_days`); `--days N`
re-pulls the N newest complete days on every run, so late corrections by Meta (data may be
delayed up to 48 h, GRAPH_API.md §7) overwrite the values stored before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from igsync.catalogue import METRIC_CONFIG, MetricSpec
from igsync.errors import ErrorKind, GraphError
from igsync.graph import GraphClient, MetricValues, per_account_calls
from igsync.local_day import LocalClock
from igsync.models import Account, InsightRow, MetricType
from igsync.streams._base import (
    MetricOutcome,
    StreamOutcome,
    clamp_note,
    gather_calls,
    served_range,
)
from igsync.window import WindowPlan, chunks, day_request_range

log = logging.getLogger(__name__)

#: the metric asked for day keys when only total_value metrics are wanted
_KEY_PROBE = "reach"
#: a grouped request failing with these kinds is retried one metric at a time (DESIGN §7)
_PER_METRIC_KINDS = (ErrorKind.INVALID, ErrorKind.PERMISSION)


@dataclass
class _Collected:
    """The answers so far, before they become rows."""

    # metric -> end_time -> value (None: Meta had no data for that day)
    values: dict[str, dict[datetime, int | None]] = field(default_factory=dict)
    # metric -> ranges (since, until] it answered for; rows are only made inside them
    answered: dict[str, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    keys: set[datetime] = field(default_factory=set)
    failed: dict[str, MetricOutcome] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # metric -> where Meta's lookback made its requests start, when after the window's start
    clamped: dict[str, tuple[MetricSpec, datetime]] = field(default_factory=dict)

    def fail(self, metric: str, error: GraphError) -> None:
        self.failed.setdefault(metric, MetricOutcome.failed(metric, error))

    def covered(self, metric: str, key: datetime) -> bool:
        return any(since < key <= until for since, until in self.answered.get(metric, ()))


class _Fetcher:
    """Talks to the Graph API for one account; isolates each metric's failures."""

    def __init__(self, graph: GraphClient, account: Account) -> None:
        self.graph = graph
        self.account = account
        # each call still counts against the account's rate limit, batched or not
        self.limit = asyncio.Semaphore(per_account_calls(batch=graph.batching))

    async def get(
        self, metrics: Sequence[str], metric_type: MetricType, since: datetime, until: datetime
    ) -> dict[str, MetricValues | GraphError]:
        """One grouped request; on a per-metric failure, one request per metric (DESIGN §7)."""
        try:
            async with self.limit:
                items = await self.graph.get_insights(
                    self.account.account_id,
                    self.account.token,
                    kind=self.account.kind,
                    metrics=metrics,
                    metric_type=metric_type,
                    since=since,
                    until=until,
                )
        except GraphError as error:
            # the window as sent (UTC): until.date() named the day after a window west of UTC
            log.info(
                "%s %s for (%s, %s] UTC: %s",
                metric_type,
                ",".join(metrics),
                f"{since.astimezone(UTC):%Y-%m-%d %H:%M}",
                f"{until.astimezone(UTC):%Y-%m-%d %H:%M}",
                error,
            )
            if error.kind == ErrorKind.AUTH:
                raise  # the token is bad for every metric: stop this account now
            if len(metrics) > 1 and error.kind in _PER_METRIC_KINDS:
                parts = await gather_calls(
                    [self.get([m], metric_type, since, until) for m in metrics]
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
        rng = served_range(plan, spec, now, out.notes)
        if rng is not None:
            groups.setdefault(rng, []).append(spec.name)
            if rng[0] > plan.since:
                out.clamped[spec.name] = (spec, rng[0])
    requests = [
        (names, since, until)
        for (start, end), names in groups.items()
        for since, until in chunks(start, end)
    ]
    answers = await gather_calls(
        [fetcher.get(names, "time_series", since, until) for names, since, until in requests]
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
    answers = await gather_calls(
        [fetcher.get(names, "total_value", since, until) for _, since, until in days]
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


@dataclass(frozen=True)
class AccountStream:
    """The account's daily metrics `specs` (from METRIC_CONFIG), stored in instagram_insights."""

    specs: Sequence[MetricSpec]
    name: str = "account"
    table: str = "instagram_insights"
    key: tuple[str, ...] = ("u_id", "account_id", "metric", "end_time")

    async def collect(
        self,
        graph: GraphClient,
        account: Account,
        plan: WindowPlan,
        now: datetime,
        clock: LocalClock,
    ) -> StreamOutcome:
        """Every metric's rows for the days of `plan` (`now` in UTC); teaches `clock` the
        account's UTC offset from the newest day end.

        Raises GraphError only when the token itself was refused (AUTH).
        """
        out = _Collected()
        api = graph.api(account.kind)
        refused = {
            s.name: MetricOutcome(
                s.name,
                error=ErrorKind.PERMISSION,
                reason=f"Meta serves it to {', '.join(sorted(s.logins))} tokens only, "
                f"and this account's token is {account.kind}",
            )
            for s in self.specs
            if not api.serves(s)
        }
        specs = [s for s in self.specs if s.name not in refused]
        series_specs = [s for s in specs if s.metric_type == "time_series"]
        total_specs = [s for s in specs if s.metric_type == "total_value"]
        fetcher = _Fetcher(graph, account)
        # The day keys come from time_series answers. reach serves every day of the window
        # (no 30-day clamp, no follower threshold), so ask it for the keys whenever
        # total_value metrics are wanted and it is not asked anyway; its values are not kept.
        probe = bool(total_specs) and _KEY_PROBE not in {s.name for s in series_specs}
        key_specs = [*series_specs, METRIC_CONFIG[_KEY_PROBE]] if probe else series_specs
        await _fetch_time_series(fetcher, key_specs, plan, now, out)
        probe_failure = out.failed.pop(_KEY_PROBE, None) if probe else None
        known = sorted(out.keys)
        if known:
            clock.learn(known[-1])
        keys = known if plan.keep_last is None else known[-plan.keep_last :]
        log.info("account %s: %d day(s) to store", account.account_id, len(keys))
        if total_specs and keys:
            await _fetch_total_values(fetcher, total_specs, keys, known, out)
        elif total_specs:
            # No day keys: when that is because the key sources failed, the total_value
            # metrics failed too and must say so; when every source answered empty, there
            # is no data.
            causes = [probe_failure] if probe_failure else []
            causes += [out.failed[s.name] for s in series_specs if s.name in out.failed]
            if causes:
                cause = causes[0]
                for spec in total_specs:
                    out.failed[spec.name] = MetricOutcome(
                        spec.name,
                        error=cause.error,
                        reason=f"could not learn the day keys: {cause.reason}",
                    )
        rows = _rows(account, specs, keys, out)
        for name, (spec, served_since) in out.clamped.items():
            if name not in out.failed and (note := clamp_note(spec, served_since, keys)):
                out.notes.append(note)
        counts = Counter(r.metric for r in rows)
        metrics = {**refused, **out.failed}
        for spec in specs:
            metrics.setdefault(spec.name, MetricOutcome(spec.name, rows=counts[spec.name]))
        return StreamOutcome(self.name, rows, metrics, out.notes, keys)
