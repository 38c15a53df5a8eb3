"""The `audience` stream: who the account's followers and viewers are, and when they are online.

- The three demographics (follower_demographics, engaged_audience_demographics,
  reached_audience_demographics) are lifetime total_value metrics asked per `breakdown` and
  `timeframe`, without a date range; Meta answers the top 45 values of each breakdown
  (GRAPH_API.md §7; graph_samples/insights_total_value_follower_demographics_age_gender_
  airbyte.json). Each value is an `AudienceRow` in `instagram_audience`, dated by the
  account-local day it was captured on: Meta keeps no history, so the daily snapshot is it.
- online_followers (period lifetime, the last 30 days only) answers one value per day: the
  followers online in each of its 24 hours (graph_samples/insights_lifetime_online_followers_
  airbyte.json). Each day is an `InsightRow` in `instagram_insights` (DESIGN §6), the hours in
  `value_json`, `value` null (no one number is Meta's), keyed by the day's end_time.

Every request goes through `GraphClient.get_insights`, the one request primitive, so batching
applies; a failed request fails that metric (and breakdown) only.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from igsync.catalogue import MetricSpec
from igsync.errors import ErrorKind, GraphError
from igsync.graph import GraphClient, MetricValues
from igsync.local_day import LocalClock, day_label
from igsync.models import Account, AudienceRow, InsightRow
from igsync.streams._base import (
    MetricOutcome,
    StreamOutcome,
    clamp_note,
    gather_calls,
    served_range,
)
from igsync.window import WindowPlan, chunks

log = logging.getLogger(__name__)

#: the breakdowns asked for: age and gender combined (at most 7 x 3 values, inside Meta's top
#: 45, so each alone is their sum) keeps both dimensions of every value; country and city alone
AUDIENCE_BREAKDOWNS: tuple[str, ...] = ("age,gender", "country", "city")
ONLINE_FOLLOWERS = "online_followers"


@dataclass(frozen=True)
class AudienceStream:
    """The audience metrics `specs` (catalogue stream "audience") of an account."""

    specs: Sequence[MetricSpec]
    breakdowns: Sequence[str] = AUDIENCE_BREAKDOWNS
    name: str = "audience"
    table: str = "instagram_audience"
    key: tuple[str, ...] = (
        "u_id",
        "account_id",
        "metric",
        "timeframe",
        "breakdown",
        "dimension_values",
        "captured_on",
    )

    async def collect(
        self,
        graph: GraphClient,
        account: Account,
        plan: WindowPlan,
        now: datetime,
        clock: LocalClock,
    ) -> StreamOutcome:
        """Today's demographics snapshot and online_followers' days within `plan` (and Meta's
        30 days). Raises GraphError only when the token itself was refused (AUTH)."""
        out = StreamOutcome(self.name)
        online = [s for s in self.specs if s.name == ONLINE_FOLLOWERS]
        if online:
            await _online_followers(graph, account, online[0], plan, now, clock, out)
        demographics = [s for s in self.specs if s.name != ONLINE_FOLLOWERS]
        captured_on = clock.today(now)
        asks = [
            (spec, breakdown, timeframe)
            for spec in demographics
            for breakdown in self.breakdowns
            for timeframe in spec.timeframes
        ]
        answers = await gather_calls([_ask(graph, account, spec.name, b, t) for spec, b, t in asks])
        failures: dict[str, MetricOutcome] = {}
        for (spec, breakdown, timeframe), answer in zip(asks, answers, strict=True):
            if isinstance(answer, GraphError):
                failures.setdefault(spec.name, MetricOutcome.failed(spec.name, answer))
                continue
            out.audience += _audience_rows(
                account, spec.name, breakdown, timeframe, captured_on, answer
            )
        counts = Counter(r.metric for r in out.audience)
        for spec in demographics:
            # a failed breakdown fails the metric; the breakdowns that answered are kept
            failed = failures.get(spec.name)
            out.metrics[spec.name] = MetricOutcome(
                spec.name,
                rows=counts[spec.name],
                error=failed.error if failed else None,
                reason=failed.reason if failed else None,
            )
        return out


async def _ask(
    graph: GraphClient, account: Account, metric: str, breakdown: str, timeframe: str
) -> list[MetricValues] | GraphError:
    try:
        return await graph.get_insights(
            account.account_id,
            account.token,
            kind=account.kind,
            metrics=[metric],
            metric_type="total_value",
            period="lifetime",
            breakdown=breakdown,
            timeframe=timeframe,
        )
    except GraphError as error:
        if error.kind == ErrorKind.AUTH:
            raise  # the token is bad for every metric: the token policy decides
        log.info("%s by %s over %s: %s", metric, breakdown, timeframe, error)
        return error


def _audience_rows(
    account: Account,
    metric: str,
    breakdown: str,
    timeframe: str,
    captured_on: Any,
    items: list[MetricValues],
) -> list[AudienceRow]:
    """One row per result of each breakdown Meta answered; an empty answer is no rows."""
    rows = []
    for item in items:
        if item.name != metric or not isinstance(item.breakdowns, list):
            continue
        for part in item.breakdowns:
            keys = part.get("dimension_keys") if isinstance(part, dict) else None
            if not isinstance(keys, list):
                continue
            for result in part.get("results") or []:
                values, value = result.get("dimension_values"), result.get("value")
                if not isinstance(values, list) or not isinstance(value, int):
                    continue
                rows.append(
                    AudienceRow(
                        u_id=account.user_id,
                        account_id=account.account_id,
                        metric=metric,
                        timeframe=timeframe,
                        # Meta's own keys, in its order: the breakdown asked for may differ
                        breakdown=",".join(map(str, keys)) or breakdown,
                        dimension_values=",".join(map(str, values)),
                        captured_on=captured_on,
                        value=value,
                    )
                )
    return rows


async def _online_followers(
    graph: GraphClient,
    account: Account,
    spec: MetricSpec,
    plan: WindowPlan,
    now: datetime,
    clock: LocalClock,
    out: StreamOutcome,
) -> None:
    """online_followers' days of `plan` that Meta still serves (its last 30 days)."""
    served = served_range(plan, spec, now, out.notes)
    if served is None:
        out.metrics[spec.name] = MetricOutcome(spec.name)
        return
    # The days this account's end_times would show are not known here: a day is surely left
    # out when even its latest possible end (the plan's next day boundary) is.
    span = (plan.until - plan.since).days
    latest_ends = [plan.since + timedelta(days=k) for k in range(1, span + 1)]
    if note := clamp_note(spec, served[0], latest_ends):
        out.notes.append(note)
    rows: dict[datetime, InsightRow] = {}
    for start, end in chunks(*served):
        try:
            items = await graph.get_insights(
                account.account_id,
                account.token,
                kind=account.kind,
                metrics=[spec.name],
                metric_type="time_series",
                period="lifetime",
                since=start,
                until=end,
            )
        except GraphError as error:
            if error.kind == ErrorKind.AUTH:
                raise
            out.metrics[spec.name] = MetricOutcome.failed(spec.name, error)
            return
        for item in items:
            for point in item.points if item.name == spec.name else []:
                if not start < point.end_time <= end:
                    continue
                rows[point.end_time] = InsightRow(
                    u_id=account.user_id,
                    account_id=account.account_id,
                    metric=spec.name,
                    metric_type="time_series",
                    period="lifetime",
                    end_time=point.end_time,
                    value=None,  # the hours are the data; no single number is Meta's
                    value_json=point.value_json,
                    local_date=day_label(point.end_time),
                )
    days = sorted(rows)
    if plan.keep_last is not None:
        days = days[-plan.keep_last :]
    if days:
        clock.learn(days[-1])
    out.rows += [rows[d] for d in days]
    out.days += days
    out.metrics[spec.name] = MetricOutcome(spec.name, rows=len(days))
