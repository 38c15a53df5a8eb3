"""Every account metric Meta serves today (GRAPH_API.md §7: Meta's own accepted list).

Left out on purpose: threads_* and `quotes` (Threads metrics, not Instagram's) and
`content_views`, which Meta's list names but its Instagram reference does not document.
"""

from __future__ import annotations

from igsync.catalogue._sources import (
    AIRBYTE_LIFETIME,
    GRAPH_API_1,
    GRAPH_API_7,
    META_IG_CHANGELOG,
    META_REFERENCE,
    META_V21,
    META_V22,
    PLINXORE,
)
from igsync.catalogue._spec import MetricSpec

#: GRAPH_API.md §1: a since older than ~729 days is refused.
LOOKBACK_DAYS = 729
#: the breakdown the interaction metrics take (META_REFERENCE; public peers request likes,
#: comments, shares and saves with breakdown=media_product_type)
_BY_MEDIA = ("media_product_type",)
#: the timeframes demographics take instead of since/until. Peers that follow Meta's current
#: reference send this_week or this_month ("documented timeframe") and report that a
#: demographics request without one is refused; older code still sends last_14_days,
#: last_30_days, last_90_days or prev_month. To re-check when the audience stream is built.
_DEMOGRAPHIC_TIMEFRAMES = ("this_week", "this_month")
_DEMOGRAPHIC_BREAKDOWNS = ("age", "city", "country", "gender")


def _total(name: str, description: str, source: str, *breakdowns: str) -> MetricSpec:
    """A daily account metric Meta serves as total_value only (GRAPH_API.md §1: the API
    refuses these without metric_type=total_value)."""
    return MetricSpec(
        name=name,
        metric_type="total_value",
        metric_types=("total_value",),
        breakdowns=breakdowns,
        lookback_days=LOOKBACK_DAYS,
        description=description,
        source=source,
    )


def _demographics(name: str, whose: str) -> MetricSpec:
    return MetricSpec(
        name=name,
        metric_type="total_value",
        metric_types=("total_value",),
        period="lifetime",
        breakdowns=_DEMOGRAPHIC_BREAKDOWNS,
        timeframes=_DEMOGRAPHIC_TIMEFRAMES,
        lookback_days=None,
        stream="audience",
        description=f"Age, city, country and gender of {whose}; top 45 values per breakdown.",
        source=f"{META_REFERENCE}; {AIRBYTE_LIFETIME}; {PLINXORE}; "
        "timeframes: public peers send timeframe=this_week|this_month",
    )


#: the defaults first, in DESIGN.md §3's order; then the rest in the order of Meta's own
#: accepted list (GRAPH_API.md §7)
METRICS: tuple[MetricSpec, ...] = (
    MetricSpec(
        name="reach",
        metric_type="time_series",
        metric_types=("time_series", "total_value"),
        breakdowns=("media_product_type", "follow_type"),
        lookback_days=LOOKBACK_DAYS,
        default=True,
        description="Unique accounts that saw your content, ads included; never sum its days.",
        source=f"{GRAPH_API_1}; graph_samples/insights_total_value_reach_breakdown_"
        f"media_product_type_follow_type_pyfacebook.json; {PLINXORE}",
    ),
    MetricSpec(
        name="profile_views",
        metric_type="total_value",
        metric_types=("total_value",),
        lookback_days=LOOKBACK_DAYS,
        default=True,
        description="Visits to your profile (time_series form retired in v21).",
        source=f"{META_V21}; {GRAPH_API_1}; {PLINXORE}",
    ),
    MetricSpec(
        name="accounts_engaged",
        metric_type="total_value",
        metric_types=("total_value",),
        lookback_days=LOOKBACK_DAYS,
        default=True,
        description="Unique accounts that interacted with your content, ads included.",
        source=f"{GRAPH_API_1}; {PLINXORE}",
    ),
    MetricSpec(
        name="follower_count",
        metric_type="time_series",
        metric_types=("time_series",),
        lookback_days=30,
        excludes_today=True,
        default=True,
        description="Followers per day; last 30 days only, excluding today; needs 100+ followers.",
        source=f"{GRAPH_API_1}; graph_samples/error_100_follower_count_last_30_days_partial.json;"
        f" {META_REFERENCE} (limitations)",
    ),
    _total(
        "website_clicks",
        "Taps on the website link in your profile (time_series form retired in v21).",
        f"{META_V21}; {GRAPH_API_1}; {PLINXORE}",
    ),
    MetricSpec(
        name="online_followers",
        metric_type="time_series",
        metric_types=("time_series",),
        period="lifetime",
        lookback_days=30,
        stream="audience",
        description="Followers online in each hour of a day; last 30 days; needs 100+ followers.",
        source=f"{META_REFERENCE} (limitations); "
        "graph_samples/insights_lifetime_online_followers_airbyte.json",
    ),
    _total(
        "total_interactions",
        "Likes, saves, comments, shares, replies and reposts on your content, ads included.",
        f"{GRAPH_API_1}; {META_REFERENCE}; {PLINXORE}",
        *_BY_MEDIA,
    ),
    _total(
        "likes", "Likes on your posts, reels and videos.", f"{GRAPH_API_1}; {PLINXORE}", *_BY_MEDIA
    ),
    _total(
        "comments",
        "Comments on your posts, reels, videos and live videos.",
        f"{GRAPH_API_1}; {PLINXORE}",
        *_BY_MEDIA,
    ),
    _total(
        "shares",
        "Shares of your posts, stories, reels, videos and live videos.",
        f"{GRAPH_API_1}; {PLINXORE}",
        *_BY_MEDIA,
    ),
    _total(
        "saves", "Saves of your posts, reels and videos.", f"{GRAPH_API_1}; {PLINXORE}", *_BY_MEDIA
    ),
    _total(
        "replies",
        "Replies to your stories (text and quick reactions).",
        f"{GRAPH_API_1}; {PLINXORE}",
    ),
    _demographics("engaged_audience_demographics", "the accounts that engaged with your content"),
    _demographics("reached_audience_demographics", "the accounts your content reached"),
    _demographics("follower_demographics", "your followers"),
    _total(
        "follows_and_unfollows",
        "Accounts that followed you and that unfollowed you; split them with follow_type.",
        f"{GRAPH_API_1}; {PLINXORE}; peers request it with breakdown=follow_type",
        "follow_type",
    ),
    _total(
        "profile_links_taps",
        "Taps on your business address, call, email and text buttons.",
        f"{GRAPH_API_1}; {PLINXORE}; peers request it with breakdown=contact_button_type",
        "contact_button_type",
    ),
    _total(
        "views",
        "Times your content was played or displayed; replaced impressions in v22.",
        f"{META_REFERENCE}; {META_V22}; {GRAPH_API_7}",
        "follower_type",
        "media_product_type",
    ),
    _total(
        "reposts",
        "Times your content was reposted (new in December 2025, all versions).",
        f"{META_IG_CHANGELOG}; {GRAPH_API_7}; {PLINXORE}",
    ),
)
