"""The simulated metrics: which rules each follows, its deterministic values, and day math."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

# GRAPH_API §1: the API refuses these without metric_type=total_value.
TOTAL_VALUE_ONLY: frozenset[str] = frozenset(
    {
        "views",
        "profile_views",
        "accounts_engaged",
        "total_interactions",
        "likes",
        "comments",
        "shares",
        "saves",
        "replies",
        "profile_links_taps",
        "website_clicks",
        "follows_and_unfollows",
        # GRAPH_API §7 / Instagram changelog (December 2025): reposts at account level; peers
        # that checked it live ask for it as total_value (plinxore/tap-instagram-user)
        "reposts",
        # the demographics: metric_type=total_value, period=lifetime (the catalogue; Airbyte's
        # UserLifetimeInsights request and its follower_demographics fixture)
        "follower_demographics",
        "engaged_audience_demographics",
        "reached_audience_demographics",
    }
)
# GRAPH_API §1: follower_count is period=day, time_series only; online_followers is
# time_series too, at period=lifetime (insights_lifetime_online_followers_airbyte.json).
TIME_SERIES_ONLY: frozenset[str] = frozenset({"follower_count", "online_followers"})
# GRAPH_API §1: reach counts unique accounts, so a window's total is not the sum of its days.
UNIQUE_ACCOUNT_METRICS: frozenset[str] = frozenset({"reach", "accounts_engaged"})
# GRAPH_API §1: follower_count needs at least 100 followers, else it is left out.
MIN_FOLLOWERS_FOR_FOLLOWER_COUNT = 100

# Dimension values: media_product_type and follow_type as the pyfacebook live-looking breakdown
# sample names them (insights_total_value_reach_breakdown_media_product_type_follow_type_
# pyfacebook.json); follower_type and contact_button_type as Meta's account insights reference
# lists them (no sample carries them).
BREAKDOWN_VALUES: dict[str, tuple[str, ...]] = {
    "media_product_type": ("AD", "CAROUSEL_CONTAINER", "POST", "REEL", "STORY"),
    "follow_type": ("FOLLOWER", "NON_FOLLOWER"),
    "follower_type": ("FOLLOWER", "NON_FOLLOWER"),
    "contact_button_type": ("BOOK_NOW", "CALL", "DIRECTION", "EMAIL", "TEXT"),
}
# The dimensions the demographics break down by (Meta's account insights reference).
DEMOGRAPHIC_BREAKDOWNS: frozenset[str] = frozenset({"age", "city", "country", "gender"})
# The breakdowns each metric takes (Meta's account insights reference: views by follower_type
# and media_product_type; reach by media_product_type and follow_type in the pyfacebook sample;
# interactions by media_product_type; follows_and_unfollows by follow_type; profile_links_taps by
# contact_button_type). Metrics not named here take none.
METRIC_BREAKDOWNS: dict[str, frozenset[str]] = {
    "reach": frozenset({"media_product_type", "follow_type"}),
    "views": frozenset({"follower_type", "media_product_type"}),
    "total_interactions": frozenset({"media_product_type"}),
    "likes": frozenset({"media_product_type"}),
    "comments": frozenset({"media_product_type"}),
    "shares": frozenset({"media_product_type"}),
    "saves": frozenset({"media_product_type"}),
    "follows_and_unfollows": frozenset({"follow_type"}),
    "profile_links_taps": frozenset({"contact_button_type"}),
    # Meta's account insights reference: demographics break down by age, city, country and
    # gender, alone or combined (Airbyte asks for city, country and age,gender)
    **dict.fromkeys(
        ("follower_demographics", "engaged_audience_demographics", "reached_audience_demographics"),
        DEMOGRAPHIC_BREAKDOWNS,
    ),
}


@dataclass(frozen=True)
class MetricSpec:
    title: str
    description: str
    low: int  # plausible daily range of a full day
    high: int


# Titles and descriptions of reach (pyfacebook v18 total_value sample), follower_count (airbyte
# fixture) and profile_views (pyfacebook docs-derived sample) are Meta's; the rest are invented in
# the same voice because no sample carries them. Every account metric Meta serves as day values
# is here (GRAPH_API §7); demographics, online_followers and threads_* are not.
METRICS: dict[str, MetricSpec] = {
    "reach": MetricSpec(
        "Accounts reached",
        "The number of unique accounts that have seen your content, at least once, including in "
        "ads. Content includes posts, stories, reels, videos and live videos. Reach is different "
        "from impressions, which may include multiple views of your content by the same accounts. "
        "This metric is estimated and in development.",
        200,
        5000,
    ),
    "follower_count": MetricSpec("Follower Count", "Total number of followers", 0, 0),
    "profile_views": MetricSpec(
        "Profile Views",
        "Total number of unique accounts that have viewed this profile within the specified period",
        10,
        400,
    ),
    "accounts_engaged": MetricSpec(
        "Accounts engaged",
        "The number of accounts that have interacted with your content, including in ads.",
        20,
        900,
    ),
    "views": MetricSpec(
        "Views", "The number of times your content was played or displayed.", 500, 20000
    ),
    "total_interactions": MetricSpec(
        "Content interactions",
        "The total number of post interactions, story interactions, reels interactions, video "
        "interactions and live video interactions, including any interactions on boosted content.",
        30,
        1500,
    ),
    "likes": MetricSpec("Likes", "The number of likes on your posts, reels and videos.", 20, 1200),
    "comments": MetricSpec("Comments", "The number of comments on your posts and reels.", 0, 150),
    "shares": MetricSpec(
        "Shares", "The number of shares of your posts, stories and reels.", 0, 120
    ),
    "saves": MetricSpec("Saves", "The number of saves of your posts, reels and videos.", 0, 200),
    "replies": MetricSpec("Replies", "The number of replies to your stories.", 0, 60),
    "profile_links_taps": MetricSpec(
        "Profile links taps",
        "The number of taps on your business address, call, email or text.",
        0,
        80,
    ),
    "website_clicks": MetricSpec(
        "Website clicks", "The number of taps on the website link in your profile.", 0, 60
    ),
    "follows_and_unfollows": MetricSpec(
        "Follows and unfollows",
        "The number of accounts that followed you and the number that unfollowed you.",
        0,
        40,
    ),
    "reposts": MetricSpec("Reposts", "The number of times your content was reposted.", 0, 50),
}

# follower_count drifts from `followers` by this share per day, counted from this date, so the
# series grows slowly and stays near the configured count over the 2-year lookback.
_FOLLOWER_ANCHOR = date(2026, 1, 1).toordinal()
_FOLLOWER_DAILY_GROWTH_DIVISOR = 5000


def stable_hash(*parts: object) -> int:
    """A hash that is the same in every process (unlike `hash()`), so values are reproducible."""
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


@lru_cache(maxsize=4096)  # every answer asks for its window's few days: 16 times an item
def day_end(tz: str, day: date) -> datetime:
    """The UTC instant of the local midnight that ends `day`: its end_time (GRAPH_API §2).

    zoneinfo makes it DST-correct: America/Los_Angeles 2026-10-31 ends 07:00Z (PDT), 2026-11-01
    ends 08:00Z (PST); Asia/Kolkata days end 18:30Z of the same date.
    """
    local_midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(tz))
    return local_midnight.astimezone(UTC)


def covered_days(tz: str, since: datetime, until: datetime) -> list[date]:
    """The local days whose end_time falls in (since, until], ascending (GRAPH_API §1)."""
    zone = ZoneInfo(tz)
    day = since.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date() + timedelta(days=1)
    days: list[date] = []
    while day <= last:
        if since < day_end(tz, day) <= until:
            days.append(day)
        day += timedelta(days=1)
    return days


def full_day_value(account_id: str, followers: int, metric: str, day: date, revision: int) -> int:
    """The value of a whole local day, deterministic per (account, metric, day, revision).

    Moving from one revision to the next changes every value ("Meta revised the numbers").
    """
    if metric == "follower_count":
        drift = (day.toordinal() - _FOLLOWER_ANCHOR) * followers // _FOLLOWER_DAILY_GROWTH_DIVISOR
        jitter = stable_hash(account_id, metric, day) % 3
        return max(0, followers + drift + jitter + revision)
    spec = METRICS[metric]
    span = spec.high - spec.low + 1
    base = stable_hash(account_id, metric, day)
    step = 1 + stable_hash(account_id, metric, day, "revision") % (span - 1)
    return spec.low + (base + revision * step) % span


def window_total(metric: str, daily: list[int]) -> int:
    """One total_value over several days: a sum for additive metrics; for unique-account
    metrics something deterministic that is smaller than the sum (GRAPH_API §1: a week's reach
    is not seven days added up)."""
    if not daily:
        return 0
    if metric in UNIQUE_ACCOUNT_METRICS:
        peak = max(daily)
        return peak + (sum(daily) - peak) // 3
    return sum(daily)


def split_total(total: int, dimensions: tuple[str, ...], seed: str) -> list[tuple[list[str], int]]:
    """Deterministic breakdown results over the cartesian product of `dimensions` that add up to
    `total`; cells that come out zero are left out, as in the samples."""
    cells: list[list[str]] = [[]]
    for dimension in dimensions:
        cells = [[*cell, value] for cell in cells for value in BREAKDOWN_VALUES[dimension]]
    weights = [1 + stable_hash(seed, *cell) % 100 for cell in cells]
    shares = apportion(total, weights)
    return [(cell, share) for cell, share in zip(cells, shares, strict=True) if share > 0]


def apportion(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights`, in integers that add up to it exactly (the
    rounding remainder goes to the heaviest); zero shares are left in, for the caller to drop."""
    shares = [total * w // sum(weights) for w in weights]
    shares[weights.index(max(weights))] += total - sum(shares)
    return shares
