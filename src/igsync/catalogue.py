"""The metric catalogue: every account metric igsync knows, as data (GRAPH_API.md §1, §7).

Adding a metric is adding a row here; nothing else branches on metric names.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from igsync.models import MetricType, TokenKind


class MetricSpec(BaseModel):
    """How one account metric must be requested (GRAPH_API.md §1)."""

    model_config = ConfigDict(frozen=True)

    name: str
    metric_type: MetricType
    period: str = "day"
    #: how far back the API serves this metric, in days
    lookback_days: int
    #: whether the API refuses the current (incomplete) day for it
    excludes_today: bool
    #: part of the default metric set
    default: bool = True
    description: str
    #: the token kinds Meta serves it to; every account metric today serves both, while some
    #: media metrics (total_likes, …) are Facebook-Login only (GRAPH_API.md §7)
    logins: frozenset[TokenKind] = frozenset({"facebook_login", "instagram_login"})


# Data, not if-chains: adding a metric is adding a row here.
METRIC_CONFIG: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            name="reach",
            metric_type="time_series",
            lookback_days=729,
            excludes_today=False,
            description="Unique accounts that saw any content (never sum days: it is unique).",
        ),
        MetricSpec(
            name="profile_views",
            metric_type="total_value",
            lookback_days=729,
            excludes_today=False,
            description="Profile visits; total_value only since v21.",
        ),
        MetricSpec(
            name="accounts_engaged",
            metric_type="total_value",
            lookback_days=729,
            excludes_today=False,
            description="Unique accounts that interacted with content.",
        ),
        MetricSpec(
            name="follower_count",
            metric_type="time_series",
            lookback_days=30,
            excludes_today=True,
            description="Followers per day; last 30 days only, excluding today; needs 100+.",
        ),
        MetricSpec(
            name="views",
            metric_type="total_value",
            lookback_days=729,
            excludes_today=False,
            default=False,
            description="Times content was played or displayed; replaced impressions in v22.",
        ),
    )
}

DEFAULT_METRICS: tuple[str, ...] = tuple(n for n, s in METRIC_CONFIG.items() if s.default)
