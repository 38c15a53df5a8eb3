"""`GET /{version}/{ig-user-id}/insights`: parameter validation and the answer bodies.

Daily metrics (period=day) are answered here; the audience metrics (period=lifetime:
demographics and online_followers) go through the same checks, in the same order, and are
answered by `_audience`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from ._audience import (
    DEMOGRAPHICS,
    LIFETIME_METRICS,
    MIN_FOLLOWERS,
    ONLINE_FOLLOWERS,
    check_audience_parameters,
    demographics_item,
    online_days,
    online_followers_item,
)
from ._errors import (
    FOLLOWER_COUNT_LAST_30_DAYS,
    JSON,
    METRIC_MUST_BE_ONE_OF,
    SINCE_NOT_VALID,
    TOTAL_VALUE_REQUIRED,
    VALID_METRICS,
    GraphReject,
    from_sample,
    invalid_parameter,
)
from ._metrics import (
    BREAKDOWN_VALUES,
    DEMOGRAPHIC_BREAKDOWNS,
    METRIC_BREAKDOWNS,
    METRICS,
    MIN_FOLLOWERS_FOR_FOLLOWER_COUNT,
    TIME_SERIES_ONLY,
    TOTAL_VALUE_ONLY,
    covered_days,
    day_end,
    split_total,
    window_total,
)
from ._model import SimAccount

MAX_WINDOW = timedelta(seconds=2_592_000)  # GRAPH_API §1: at most 30 days between since/until
LOOKBACK = timedelta(days=730)  # GRAPH_API §1: "available for the last 2 years"
FOLLOWER_COUNT_LOOKBACK = timedelta(days=30)  # error_100_follower_count_last_30_days_partial.json
DEFAULT_WINDOW = timedelta(days=2)  # missing since/until: the last 2 days ending now
METRIC_TYPES = ("time_series", "total_value")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNIX = re.compile(r"-?\d+")


@dataclass(frozen=True)
class InsightsQuery:
    """A request that passed validation."""

    metrics: tuple[str, ...]
    metric_type: str  # "time_series" or "total_value"
    since: datetime
    until: datetime
    breakdowns: tuple[str, ...]
    period: str = "day"  # "lifetime" for the audience metrics
    timeframe: str | None = None  # demographics only


def requested_metrics(params: Mapping[str, str]) -> tuple[str, ...]:
    """The `metric` comma list, as faults match it too."""
    return tuple(m.strip() for m in params.get("metric", "").split(",") if m.strip())


def parse_instant(raw: str) -> datetime | None:
    """Unix seconds, or YYYY-MM-DD meaning 00:00 UTC of that date; None if neither."""
    raw = raw.strip()
    try:
        if _UNIX.fullmatch(raw):
            return datetime.fromtimestamp(int(raw), UTC)
        if _DATE.fullmatch(raw):
            return datetime.combine(date.fromisoformat(raw), datetime.min.time(), UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _check_metrics(metrics: tuple[str, ...]) -> None:
    if not metrics:
        raise invalid_parameter("(#100) The parameter metric is required")  # invented; no sample
    for index, metric in enumerate(metrics):
        # Retired metrics (impressions, profile_visits, email_contacts, …) are simply no longer
        # among the valid ones: in 2026 Meta answers impressions with this list too (plinxore's
        # live check on v22.0, 2026-06-24; brightbean-studio PR #76, 2026-06-19), where in
        # February 2025 it still sent the "Starting from version 22" message of
        # error_100_impressions_unsupported_v22_postiz_issue622_partial.json.
        if metric not in VALID_METRICS:
            raise invalid_parameter(METRIC_MUST_BE_ONE_OF.format(index=index))


def _check_metric_type(metrics: tuple[str, ...], raw: str | None) -> str:
    metric_type = (raw or "time_series").lower()
    if metric_type not in METRIC_TYPES:
        # invented: Graph's enum-parameter wording; no sample for metric_type
        raise invalid_parameter(
            f'(#100) Param metric_type must be one of {{TIME_SERIES, TOTAL_VALUE}} - got "{raw}"'
        )
    if metric_type == "time_series":
        offenders = [m for m in metrics if m in TOTAL_VALUE_ONLY]
        if offenders:
            raise invalid_parameter(TOTAL_VALUE_REQUIRED.format(metrics=", ".join(offenders)))
    else:
        offenders = [m for m in metrics if m in TIME_SERIES_ONLY]
        if offenders:
            # invented: mirror of the total_value message, no sample for this direction
            raise invalid_parameter(
                f"(#100) The following metrics ({', '.join(offenders)}) should be specified "
                "with parameter metric_type=time_series"
            )
    return metric_type


def _check_period(metrics: tuple[str, ...], raw: str | None) -> str:
    # The audience metrics take period=lifetime, every other one period=day (the catalogue;
    # both samples of lifetime items); a missing period is read as day. week and days_28 are
    # not simulated.
    period = (raw or "day").lower()
    if any(period != ("lifetime" if m in LIFETIME_METRICS else "day") for m in metrics):
        # invented: no sample for an unsupported period
        raise invalid_parameter(
            f"(#100) Incompatible period ({raw or 'day'}) for the requested metrics"
        )
    return period


def _check_breakdowns(metrics: tuple[str, ...], raw: str | None) -> tuple[str, ...]:
    breakdowns = tuple(b.strip() for b in (raw or "").split(",") if b.strip())
    for index, name in enumerate(breakdowns):
        if name not in BREAKDOWN_VALUES and name not in DEMOGRAPHIC_BREAKDOWNS:
            # invented, in the wording of the metric[i] sample
            allowed = ", ".join([*BREAKDOWN_VALUES, *sorted(DEMOGRAPHIC_BREAKDOWNS)])
            raise invalid_parameter(
                f"(#100) breakdown[{index}] must be one of the following values: {allowed}"
            )
        offenders = [m for m in metrics if name not in METRIC_BREAKDOWNS.get(m, frozenset())]
        if offenders:
            # invented: no sample of a breakdown a metric does not take
            raise invalid_parameter(
                f"(#100) The following metrics ({', '.join(offenders)}) do not support the "
                f"breakdown {name}"
            )
    return breakdowns


def _window(params: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    raw_since, raw_until = params.get("since"), params.get("until")
    since = parse_instant(raw_since) if raw_since is not None else None
    until = parse_instant(raw_until) if raw_until is not None else None
    if raw_since is not None and since is None:
        raise GraphReject(from_sample(SINCE_NOT_VALID))
    if raw_until is not None and until is None:
        raise invalid_parameter("(#100) until param is not valid")  # invented; no sample
    if until is None:
        until = now if since is None else since + DEFAULT_WINDOW
    if since is None:
        since = until - DEFAULT_WINDOW
    return since, until


def parse_insights_query(params: Mapping[str, str], now: datetime) -> InsightsQuery:
    """Validate in the order the API does; the first failure raises its real error body."""
    metrics = requested_metrics(params)
    _check_metrics(metrics)
    metric_type = _check_metric_type(metrics, params.get("metric_type"))
    period = _check_period(metrics, params.get("period"))
    breakdowns = _check_breakdowns(metrics, params.get("breakdown"))
    timeframe = check_audience_parameters(metrics, breakdowns, params.get("timeframe"))
    since, until = _window(params, now)
    if all(m in DEMOGRAPHICS for m in metrics):
        # demographics cover their timeframe and ignore since/until
        return InsightsQuery(metrics, metric_type, since, until, breakdowns, period, timeframe)
    # Same message for a future since and one past the lookback (GRAPH_API §1).
    if since > now or since < now - LOOKBACK:
        raise GraphReject(from_sample(SINCE_NOT_VALID))
    if until - since > MAX_WINDOW:
        raise invalid_parameter(
            "(#100) There cannot be more than 30 days (2592000 s) between since and until"
        )
    if "follower_count" in metrics and since < now - FOLLOWER_COUNT_LOOKBACK:
        raise invalid_parameter(FOLLOWER_COUNT_LAST_30_DAYS)
    return InsightsQuery(metrics, metric_type, since, until, breakdowns, period, timeframe)


def paging_urls(
    base: str, params: Mapping[str, str], token: str, since: datetime, until: datetime
) -> dict[str, str]:
    """previous/next windows of the same width, shaped like
    paging_insights_time_based_previous_next_pyfacebook.json: the real API writes the caller's
    access_token into them, which is why the body must be redacted before it is logged."""
    width = int((until - since).total_seconds())
    start, end = int(since.timestamp()), int(until.timestamp())
    # what both links share, encoded once: percent-encoding was a fifth of a batch item's work
    pairs = [("access_token", token), ("metric", params.get("metric", ""))]
    pairs += [(k, params[k]) for k in ("metric_type", "period", "breakdown") if k in params]
    head = urlencode(pairs)
    tail = ""
    if "appsecret_proof" in params:  # so that following the link works when proof is required
        tail = "&" + urlencode({"appsecret_proof": params["appsecret_proof"]})

    def url(window_since: int, window_until: int) -> str:
        return f"{base}?{head}&since={window_since}&until={window_until}{tail}"

    return {"previous": url(start - width, start), "next": url(end, end + width)}


def _titles(metric: str) -> JSON:
    spec = METRICS[metric]
    return {"title": spec.title, "description": spec.description}


def _time_series_item(account: SimAccount, metric: str, served: list[tuple[date, int]]) -> JSON:
    # Key order of insights_time_series_follower_count_reach_day_airbyte.json.
    values = [
        {"value": value, "end_time": day_end(account.tz, day).strftime("%Y-%m-%dT%H:%M:%S+0000")}
        for day, value in served
    ]
    return {
        "name": metric,
        "period": "day",
        "values": values,
        **_titles(metric),
        "id": f"{account.account_id}/insights/{metric}/day",
    }


def _total_value_item(
    account: SimAccount, metric: str, served: list[tuple[date, int]], query: InsightsQuery
) -> JSON:
    # Key order of the pyfacebook total_value sample; no values, no end_time (GRAPH_API §1).
    total = window_total(metric, [value for _, value in served])
    total_value: dict[str, Any] = {"value": total}
    if query.breakdowns:
        seed = f"{account.account_id}/{metric}/{served[0][0]}/{served[-1][0]}"
        results = split_total(total, query.breakdowns, seed)
        total_value["breakdowns"] = [
            {
                "dimension_keys": list(query.breakdowns),
                "results": [{"dimension_values": d, "value": v} for d, v in results],
            }
        ]
    return {
        "name": metric,
        "period": "day",
        **_titles(metric),
        "total_value": total_value,
        "id": f"{account.account_id}/insights/{metric}/day",
    }


def _audience_item(account: SimAccount, metric: str, query: InsightsQuery, now: datetime) -> JSON:
    if metric == ONLINE_FOLLOWERS:
        days = online_days(account.tz, query.since, query.until, now)
        return online_followers_item(account.account_id, account.followers, account.tz, days)
    assert query.timeframe is not None  # checked by check_audience_parameters
    today = now.astimezone(ZoneInfo(account.tz)).date()
    return demographics_item(
        account.account_id, account.followers, metric, query.breakdowns, query.timeframe, today
    )


def insights_body(
    account: SimAccount,
    query: InsightsQuery,
    value_of: Callable[[str, date], int | None],
    paging: Callable[[], dict[str, str]],
    now: datetime,
) -> JSON:
    """The answer to a valid request. Missing data is left out, never turned into 0
    (insights_empty_data_documented.json: "an empty data set instead of 0")."""
    if account.empty:
        return {"data": []}
    days = covered_days(account.tz, query.since, query.until)
    data: list[JSON] = []
    for metric in query.metrics:
        if metric in LIFETIME_METRICS:
            if account.followers >= MIN_FOLLOWERS:
                data.append(_audience_item(account, metric, query, now))
            continue
        if metric not in METRICS:
            continue  # valid for Meta but not simulated (demographics, threads_*): no data
        if metric == "follower_count" and account.followers < MIN_FOLLOWERS_FOR_FOLLOWER_COUNT:
            continue
        served = [(day, v) for day in days if (v := value_of(metric, day)) is not None]
        if query.metric_type == "time_series":
            data.append(_time_series_item(account, metric, served))
        elif served:
            data.append(_total_value_item(account, metric, served, query))
    if not data:
        return {"data": []}
    if all(m in DEMOGRAPHICS for m in query.metrics):
        return {"data": data}  # no since/until to page by (the Airbyte sample has no paging)
    return {"data": data, "paging": paging()}
