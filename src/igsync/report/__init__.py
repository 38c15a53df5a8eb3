"""`igsync report`: the stored numbers of the last N account-local days, per account and metric.

    build_report    read the store and assemble a `Report` (never prints, never renders)
    sparkline       a series as unicode blocks, a gap as a space
    render_html     one self-contained HTML page of charts (plotly, the `report` extra)

What a report holds (all from the store's existing reads, by account-local date):

- per account and daily metric: the values of each local date of the period (None where no
  value is stored or Meta had none: a gap, never a 0), the latest value, and the change of the
  period's mean daily value against the previous period of the same length. Means, not sums:
  reach and accounts_engaged count unique accounts, so their days never add up (the catalogue).
- per account, the newest audience snapshot of each demographic breakdown (top values);
- per account, the media objects (and stories) with the most views in their newest snapshot
  captured within the period.

Snapshots (audience, media) count as within the period when captured from its first day to the
day after its last: a sync captures them after local midnight, for the last complete day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from pydantic import BaseModel, Field

from igsync.catalogue import METRIC_CONFIG
from igsync.models import AudienceRow, InsightRow, MediaInsightRow, MediaRow
from igsync.report._html import render_html, require_plotly
from igsync.store import Store
from igsync.store.streaming import RowFilter
from igsync.store.tables import AUDIENCE, INSIGHTS, MEDIA, MEDIA_INSIGHTS

__all__ = [
    "REPORT_STREAMS",
    "AccountReport",
    "AudienceBreakdown",
    "MetricSeries",
    "Report",
    "TopMedia",
    "build_report",
    "render_html",
    "require_plotly",
    "sparkline",
]

#: the streams a report can show; `account` is the daily metrics of instagram_insights
REPORT_STREAMS = ("account", "audience", "media", "stories")
#: values shown per audience breakdown (Meta serves the top 45)
AUDIENCE_TOP = 10
#: media objects shown per account and stream
MEDIA_TOP = 5
#: what media are ranked by: the first of these a snapshot has (views replaced impressions
#: and plays in v22, Meta's changelog; reach is every media type's fallback)
MEDIA_RANK = ("views", "reach", "total_interactions")
_BLOCKS = "▁▂▃▄▅▆▇█"


class MetricSeries(BaseModel):
    """One account's daily metric over the period, a value per local date (None: a gap)."""

    metric: str
    #: one per local date of the report's `dates`, oldest first
    values: list[int | None]
    #: the newest value in the period that is not a gap, and its local date
    latest: int | None
    latest_date: date | None
    #: mean daily value over the dates that have one (None: no value in the period)
    mean: float | None
    #: the same over the previous period of equal length
    previous_mean: float | None
    #: (mean - previous_mean) / previous_mean, in percent; None when either is missing or 0
    change_pct: float | None


class AudienceBreakdown(BaseModel):
    """The newest snapshot of one audience breakdown: its top values, largest first."""

    metric: str
    timeframe: str
    breakdown: str
    captured_on: date
    #: (dimension values, e.g. "US" or "18-24,F"; value)
    top: list[tuple[str, int]]


class TopMedia(BaseModel):
    """A media object (or story) and its newest snapshot captured within the period."""

    media_id: str
    media_product_type: str | None
    media_type: str | None
    timestamp: str | None
    permalink: str | None
    captured_on: date
    #: the metric it is ranked by (MEDIA_RANK) and its value
    metric: str
    value: int


class AccountReport(BaseModel):
    """Everything a report shows for one account."""

    u_id: UUID
    account_id: str
    metrics: list[MetricSeries] = Field(default_factory=list)
    audience: list[AudienceBreakdown] = Field(default_factory=list)
    top_media: list[TopMedia] = Field(default_factory=list)
    top_stories: list[TopMedia] = Field(default_factory=list)


class Report(BaseModel):
    """The report: `dates` are the period's account-local dates, oldest first."""

    since: date
    until: date
    previous_since: date
    previous_until: date
    dates: list[date]
    streams: list[str]
    accounts: list[AccountReport]


def sparkline(values: Sequence[int | None]) -> str:
    """One character per value: ▁ (the smallest) to █ (the largest), a space for a gap.

    A flat series (all values equal) is drawn at mid height, so it never reads as zero.
    """
    known = [v for v in values if v is not None]
    if not known:
        return " " * len(values)
    low, high = min(known), max(known)
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif span == 0:
            out.append(_BLOCKS[len(_BLOCKS) // 2 - 1])
        else:
            out.append(_BLOCKS[round((v - low) / span * (len(_BLOCKS) - 1))])
    return "".join(out)


def _mean(values: Sequence[int | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


#: how far back the newest stored local date is looked for, widening only while none is found:
#: a store synced lately answers from its last week of rows, not from its whole history
_LOOKBACK_DAYS = (7, 62, 800)


async def _newest_date(store: Store, u_id: UUID | None, today: date) -> date | None:
    """The newest local_date stored (of the user's rows, when given); None when there is none."""
    for back in (*_LOOKBACK_DAYS, None):
        since = None if back is None else today - timedelta(days=back)
        newest: date | None = None
        rows = RowFilter(u_id=u_id, since=since)
        async with aclosing(store.stream_rows(INSIGHTS, rows=rows)) as found:
            async for row in found:
                if row.local_date is not None and (newest is None or row.local_date > newest):
                    newest = row.local_date
        if newest is not None:
            return newest
    return None


async def build_report(
    store: Store,
    *,
    days: int = 14,
    until: date | None = None,
    u_id: UUID | None = None,
    metrics: Sequence[str] | None = None,
    streams: Sequence[str] | None = None,
) -> Report:
    """The report of the `days` account-local dates ending `until` (inclusive).

    `until` None: the newest local date stored (of `u_id`'s rows when given), so a report of
    an old sync still shows its numbers; with nothing stored, yesterday (UTC). `metrics`: the
    daily account metrics to show (None: every one stored, in the catalogue's order);
    `streams`: which of REPORT_STREAMS (None: all; a stream with no rows shows nothing).
    Reads with `Store.stream_rows`; raises StoreError when a read fails, ValueError for
    `days` < 1.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    chosen = tuple(streams) if streams else REPORT_STREAMS
    if until is None:
        today = datetime.now(UTC).date()
        until = await _newest_date(store, u_id, today) or today - timedelta(days=1)
    since = until - timedelta(days=days - 1)
    previous_until = since - timedelta(days=1)
    previous_since = previous_until - timedelta(days=days - 1)
    dates = [since + timedelta(days=i) for i in range(days)]
    accounts: dict[tuple[UUID, str], AccountReport] = {}

    def account(u: UUID, a: str) -> AccountReport:
        return accounts.setdefault((u, a), AccountReport(u_id=u, account_id=a))

    if "account" in chosen:
        rows = RowFilter(u_id=u_id, since=previous_since, until=until)
        series = await _daily(store, rows, metrics)
        for (u, a), by_metric in series.items():
            report = account(u, a)
            for metric in _metric_order(by_metric, metrics):
                report.metrics.append(_series(metric, by_metric[metric], dates, days))
    # A snapshot captured on day D holds what Meta counted until the sync ran on D: one
    # captured the day after the period (a sync runs after local midnight, for the last
    # complete day) is the period's end state.
    captured = RowFilter(u_id=u_id, since=since, until=until + timedelta(days=1))
    if "audience" in chosen:
        snapshots = await _audience(store, captured)
        for (u, a), found in snapshots.items():
            account(u, a).audience = found
    if "media" in chosen or "stories" in chosen:
        ranked = await _top_media(store, captured)
        for (u, a), (media, stories) in ranked.items():
            if "media" in chosen and media:
                account(u, a).top_media = media
            if "stories" in chosen and stories:
                account(u, a).top_stories = stories
    return Report(
        since=since,
        until=until,
        previous_since=previous_since,
        previous_until=previous_until,
        dates=dates,
        streams=list(chosen),
        accounts=[accounts[k] for k in sorted(accounts, key=lambda k: (k[1], str(k[0])))],
    )


Daily = dict[tuple[UUID, str], dict[str, dict[date, int | None]]]


async def _daily(store: Store, rows: RowFilter, metrics: Sequence[str] | None) -> Daily:
    """value per (account, metric, local date) of the daily account metrics stored."""
    wanted = set(metrics) if metrics else None
    found: Daily = defaultdict(lambda: defaultdict(dict))
    async with aclosing(store.stream_rows(INSIGHTS, rows=rows)) as stored:
        row: InsightRow
        async for row in stored:
            spec = METRIC_CONFIG.get(row.metric)
            if row.period != "day" or row.local_date is None:
                continue
            if (wanted is not None and row.metric not in wanted) or (
                wanted is None and spec is not None and spec.stream != "account"
            ):
                continue
            days = found[(row.u_id, row.account_id)][row.metric]
            old = days.get(row.local_date)
            # two rows of one local date (an account that changed time zone): the larger
            # shows, as in the instagram_daily view
            if row.value is not None and (old is None or row.value > old):
                days[row.local_date] = row.value
            else:
                days.setdefault(row.local_date, old)
    return found


def _metric_order(found: Mapping[str, object], metrics: Sequence[str] | None) -> list[str]:
    if metrics:
        return [m for m in metrics if m in found]
    catalogue = list(METRIC_CONFIG)
    return sorted(found, key=lambda m: (catalogue.index(m) if m in catalogue else 999, m))


def _series(
    metric: str, by_date: dict[date, int | None], dates: list[date], days: int
) -> MetricSeries:
    values = [by_date.get(d) for d in dates]
    previous = [by_date.get(d - timedelta(days=days)) for d in dates]
    latest_at = next((i for i in range(len(values) - 1, -1, -1) if values[i] is not None), None)
    mean, previous_mean = _mean(values), _mean(previous)
    change = (
        (mean - previous_mean) / previous_mean * 100 if mean is not None and previous_mean else None
    )
    return MetricSeries(
        metric=metric,
        values=values,
        latest=None if latest_at is None else values[latest_at],
        latest_date=None if latest_at is None else dates[latest_at],
        mean=mean,
        previous_mean=previous_mean,
        change_pct=None if change is None else round(change, 1),
    )


async def _audience(
    store: Store, rows: RowFilter
) -> dict[tuple[UUID, str], list[AudienceBreakdown]]:
    """The newest snapshot of each (metric, breakdown) per account; of its timeframes the
    first in sorted order (this_month before this_week), so one breakdown shows once."""
    newest: dict[tuple[UUID, str, str, str], tuple[date, str]] = {}
    values: dict[tuple[UUID, str, str, str, str, date], list[tuple[str, int]]] = defaultdict(list)
    async with aclosing(store.stream_rows(AUDIENCE, rows=rows)) as stored:
        row: AudienceRow
        async for row in stored:
            key = (row.u_id, row.account_id, row.metric, row.breakdown)
            mark = (row.captured_on, row.timeframe)
            best = newest.get(key)
            if best is None or mark[0] > best[0] or (mark[0] == best[0] and mark[1] < best[1]):
                newest[key] = mark
            values[(*key, row.timeframe, row.captured_on)].append((row.dimension_values, row.value))
    found: dict[tuple[UUID, str], list[AudienceBreakdown]] = defaultdict(list)
    for key in sorted(newest, key=lambda k: (str(k[0]), k[1], k[2], k[3])):
        captured_on, timeframe = newest[key]
        top = sorted(values[(*key, timeframe, captured_on)], key=lambda p: (-p[1], p[0]))
        found[(key[0], key[1])].append(
            AudienceBreakdown(
                metric=key[2],
                timeframe=timeframe,
                breakdown=key[3],
                captured_on=captured_on,
                top=top[:AUDIENCE_TOP],
            )
        )
    return found


async def _top_media(
    store: Store, rows: RowFilter
) -> dict[tuple[UUID, str], tuple[list[TopMedia], list[TopMedia]]]:
    """Per account: (posts and reels, stories), each the MEDIA_TOP with the largest ranking
    metric in their newest snapshot of the period."""
    snapshots: dict[tuple[UUID, str, str], dict[str, tuple[date, int]]] = defaultdict(dict)
    async with aclosing(store.stream_rows(MEDIA_INSIGHTS, rows=rows)) as stored:
        snap: MediaInsightRow
        async for snap in stored:
            if snap.value is None or snap.metric not in MEDIA_RANK:
                continue
            kept = snapshots[(snap.u_id, snap.account_id, snap.media_id)]
            old = kept.get(snap.metric)
            if old is None or snap.captured_on > old[0]:
                kept[snap.metric] = (snap.captured_on, snap.value)
    if not snapshots:
        return {}
    objects: dict[tuple[UUID, str, str], MediaRow] = {}
    async with aclosing(store.stream_rows(MEDIA, rows=RowFilter(u_id=rows.u_id))) as stored:
        obj: MediaRow
        async for obj in stored:
            if obj.key in snapshots:
                objects[obj.key] = obj
    ranked: dict[tuple[UUID, str], tuple[list[TopMedia], list[TopMedia]]] = {}
    for key, kept in snapshots.items():
        metric = next(m for m in MEDIA_RANK if m in kept)
        captured_on, value = kept[metric]
        media_object = objects.get(key)
        item = TopMedia(
            media_id=key[2],
            media_product_type=media_object.media_product_type if media_object else None,
            media_type=media_object.media_type if media_object else None,
            timestamp=(
                media_object.timestamp.isoformat()
                if media_object and media_object.timestamp
                else None
            ),
            permalink=media_object.permalink if media_object else None,
            captured_on=captured_on,
            metric=metric,
            value=value,
        )
        media, stories = ranked.setdefault((key[0], key[1]), ([], []))
        (stories if item.media_product_type == "STORY" else media).append(item)
    for media, stories in ranked.values():
        for items in (media, stories):
            items.sort(key=lambda m: (-m.value, m.media_id))
            del items[MEDIA_TOP:]
    return ranked
