"""The `media` and `stories` streams: an account's media objects and their lifetime insights.

- The media edge (`GET /{ig-user-id}/media`, newest first, cursor paging: Meta's "Paginated
  results" guide) is read back to a bound: media posted within the last `SNAPSHOT_DAYS` days,
  or since the window's first day when that is earlier (a backfill). The stories edge
  (`GET /{ig-user-id}/stories`) lists the stories of the last 24 hours only: run the stories
  stream more often than daily (e.g. hourly) to see every story (GRAPH_API.md §3).
- Each object is a `MediaRow` (instagram_media: media_type, media_product_type, timestamp in
  UTC, permalink, like and comment counts), upserted: the newest counts win.
- Its insights (`GET /{ig-media-id}/insights`) are lifetime values without end_time
  (graph_samples/media_insights_lifetime_values_no_end_time_pyfacebook.json), kept as one
  `MediaInsightRow` per metric and account-local day (instagram_media_insights), so growth
  over time is kept. The metrics asked depend on the media product type (Meta's IG Media
  Insights reference): a metric a type refuses ("does not support the … metric for this media
  product type", graph_samples/error_100_views_not_supported_for_media_product_type_airbyte_
  pr62902.json) is skipped for that type for the rest of the run, noted once; media posted
  before the account became a business account (subcode 2108006, graph_samples/error_100_
  subcode_2108006_media_before_business_conversion_airbyte.json) has no insights: noted, never
  a failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from igsync.errors import ErrorKind, GraphError
from igsync.graph import GraphClient, GraphRequest, MetricValues, graph_time, parse_insights
from igsync.local_day import LocalClock
from igsync.models import Account, MediaInsightRow, MediaRow
from igsync.streams._base import MetricOutcome, StreamOutcome, gather_calls
from igsync.window import WindowPlan

log = logging.getLogger(__name__)

#: media posted within this many days get a daily snapshot of their insights
SNAPSHOT_DAYS = 30
#: objects per page of the media edge
PAGE_SIZE = 50
#: the IG Media fields kept (DESIGN §6)
MEDIA_FIELDS = "id,media_type,media_product_type,timestamp,permalink,like_count,comments_count"
#: the metrics asked per media product type (Meta's IG Media Insights reference); a FEED video
#: refuses most of them (airbytehq/airbyte#33989): the refusal is learned, not hard-coded
METRICS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "FEED": (
        "views", "reach", "likes", "comments", "saved", "shares", "total_interactions",
        "follows", "profile_visits", "profile_activity",
    ),
    "REELS": (
        "views", "reach", "likes", "comments", "saved", "shares", "total_interactions",
        "ig_reels_avg_watch_time", "ig_reels_video_view_total_time",
    ),
    "STORY": (
        "views", "reach", "replies", "shares", "total_interactions", "follows",
        "profile_visits", "navigation",
    ),
}  # fmt: skip
#: Meta's subcode for media posted before the business conversion
BEFORE_CONVERSION = 2108006


@dataclass
class MediaStream:
    """The objects of one media edge of an account and their insights.

    `refused` remembers, for the run, which metrics a (media_type, media_product_type) refused,
    so every later object of that type asks only what Meta serves it: the first object of a
    type in the run asks alone, and the others of its type wait for what it learned.
    """

    name: str = "media"
    edge: str = "media"
    table: str = "instagram_media_insights"
    key: tuple[str, ...] = ("u_id", "account_id", "media_id", "metric", "captured_on")
    refused: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    page_size: int = PAGE_SIZE
    _learned: dict[tuple[str, str], asyncio.Event] = field(default_factory=dict, repr=False)

    async def collect(
        self,
        graph: GraphClient,
        account: Account,
        plan: WindowPlan,
        now: datetime,
        clock: LocalClock,
    ) -> StreamOutcome:
        """The edge's objects (back to the snapshot bound) and today's insights of each.

        Raises GraphError only when the token itself was refused (AUTH).
        """
        out = StreamOutcome(self.name)
        bound = min(plan.since, now - timedelta(days=SNAPSHOT_DAYS))
        try:
            out.media = await self._list(graph, account, bound)
        except GraphError as error:
            if error.kind == ErrorKind.AUTH:
                raise
            out.metrics[self.edge] = MetricOutcome.failed(self.edge, error)
            return out
        captured_on = clock.today(now)
        answers = await gather_calls(
            [self._insights(graph, account, media, captured_on, out) for media in out.media]
        )
        out.media_insights = [row for rows in answers if rows is not None for row in rows]
        before = sum(1 for rows in answers if rows is None)
        if before:
            out.notes.append(
                f"{self.name}: {before} object(s) posted before the account became a business "
                "account: Meta serves no insights for them"
            )
        counts = Counter(r.metric for r in out.media_insights)
        out.metrics[self.edge] = MetricOutcome(self.edge, rows=len(out.media))
        for metric, rows in counts.items():
            out.metrics.setdefault(metric, MetricOutcome(metric, rows=rows))
        return out

    async def _list(self, graph: GraphClient, account: Account, bound: datetime) -> list[MediaRow]:
        """Every object of the edge posted after `bound`, following `paging.next` (newest
        first, so the first object older than the bound ends the walk)."""
        rows: list[MediaRow] = []
        params = {"fields": MEDIA_FIELDS, "limit": str(self.page_size)}
        while True:
            body = await graph.call(
                GraphRequest(
                    account.kind, f"{account.account_id}/{self.edge}", params, account.token
                )
            )
            page = body.get("data") if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise GraphError(
                    "the media edge answered without a data list", kind=ErrorKind.TRANSIENT
                )
            for item in page:
                row = _media_row(account, item)
                if row is None:
                    continue
                if row.timestamp is not None and row.timestamp < bound:
                    return rows
                rows.append(row)
            paging = body.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                return rows
            params = {**params, "after": str(after)}

    async def _insights(
        self,
        graph: GraphClient,
        account: Account,
        media: MediaRow,
        captured_on: date,
        out: StreamOutcome,
    ) -> list[MediaInsightRow] | None:
        """Today's insights of one object; None when Meta keeps none (before the conversion)."""
        kind = (media.media_type or "", media.media_product_type or "FEED")
        learned = self._learned.get(kind)
        if learned is None:
            self._learned[kind] = learned = asyncio.Event()
            try:
                return await self._ask(graph, account, media, kind, captured_on, out)
            finally:
                learned.set()
        await learned.wait()
        return await self._ask(graph, account, media, kind, captured_on, out)

    async def _ask(
        self,
        graph: GraphClient,
        account: Account,
        media: MediaRow,
        kind: tuple[str, str],
        captured_on: date,
        out: StreamOutcome,
    ) -> list[MediaInsightRow] | None:
        wanted = METRICS_BY_TYPE.get(kind[1], METRICS_BY_TYPE["FEED"])
        metrics = [m for m in wanted if m not in self.refused.get(kind, set())]
        items: list[MetricValues] = []
        pending = [metrics] if metrics else []
        while pending:
            group = pending.pop()
            try:
                body = await graph.call(
                    GraphRequest(
                        account.kind,
                        f"{media.media_id}/insights",
                        {"metric": ",".join(group)},
                        account.token,
                    )
                )
                items += parse_insights(body)
            except GraphError as error:
                if error.kind == ErrorKind.AUTH:
                    raise
                if error.subcode == BEFORE_CONVERSION:
                    return None
                if error.kind != ErrorKind.INVALID:
                    out.metrics.setdefault(
                        f"{self.edge} insights",
                        MetricOutcome.failed(f"{self.edge} insights", error),
                    )
                    continue
                if len(group) > 1:
                    pending += [[m] for m in group]  # find which one the type refuses
                    continue
                self._refuse(kind, group[0], error, out)
        return [_insight_row(account, media, captured_on, item) for item in items]

    def _refuse(
        self, kind: tuple[str, str], metric: str, error: GraphError, out: StreamOutcome
    ) -> None:
        """Learn that `kind` refuses `metric`; one note per kind lists what it refused."""
        known = self.refused.setdefault(kind, set())
        if metric in known:
            return
        known.add(metric)
        lead = f"{kind[1]} {kind[0]} media: Meta does not serve "
        tail = "; skipped for this type"
        for i, note in enumerate(out.notes):
            if note.startswith(lead):
                out.notes[i] = f"{note.removesuffix(tail)}, {metric}{tail}"
                return
        log.info("%s %s media refuse %s: %s", kind[1], kind[0], metric, error.message)
        out.notes.append(f"{lead}{metric}{tail}")


def _media_row(account: Account, item: Any) -> MediaRow | None:
    if not isinstance(item, dict) or not item.get("id"):
        return None
    stamp = item.get("timestamp")
    return MediaRow(
        u_id=account.user_id,
        account_id=account.account_id,
        media_id=str(item["id"]),
        media_type=item.get("media_type"),
        media_product_type=item.get("media_product_type"),
        timestamp=graph_time(stamp, "timestamp") if isinstance(stamp, str) else None,
        permalink=item.get("permalink"),
        like_count=item.get("like_count"),
        comments_count=item.get("comments_count"),
    )


def _insight_row(
    account: Account, media: MediaRow, captured_on: date, item: MetricValues
) -> MediaInsightRow:
    return MediaInsightRow(
        u_id=account.user_id,
        account_id=account.account_id,
        media_id=media.media_id,
        metric=item.name,
        captured_on=captured_on,
        value=item.total,
        value_json=item.breakdowns,
    )


def stories_stream() -> MediaStream:
    """The stories edge: live stories only (24 h), so it wants a more frequent schedule."""
    return MediaStream(name="stories", edge="stories")
