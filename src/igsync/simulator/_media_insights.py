"""`GET /{ig-media-id}/insights`: which metrics each media product type serves, their lifetime
values, and Meta's refusals.

Sources:
- the valid names: Meta's own "metric[0] must be one of" list for media insights, validated
  live by plinxore/tap-instagram-user (docs/meta_api_reference.md, v22.0, 2026-06-24);
- which product type takes which metric: Meta's media insights reference (post metrics: likes,
  comments, saved, shares, follows, profile_visits, profile_activity, total_interactions;
  story metrics: navigation, replies, follows, profile_visits, profile_activity, shares,
  total_interactions; reels: ig_reels_avg_watch_time, ig_reels_video_view_total_time; views
  and reach everywhere), plinxore's live table by media type (reels refuse follows,
  profile_visits, profile_activity), live refusals quoted by peers for reels ("does not
  support the follows metric for this media product type", 2026-10), and Airbyte's requests
  per type (FEED videos: reach and saved only — airbytehq/airbyte#33989 and #62902 hit the
  refusal of total_interactions, likes, comments and views on them; AD media get the FEED
  metrics without reported failures). reposts is served on FEED and REELS (GRAPH_API §7,
  Meta 2025-12-03); stories are not reposted, so they refuse it (an assumption).
- shapes: media_insights_lifetime_values_no_end_time_pyfacebook.json (lifetime `values`
  without end_time) and media_insights_values_and_total_value_profile_activity_pyfacebook.json
  (with a breakdown: `values` and `total_value.breakdowns`); breakdown values in lower case as
  in that sample and Meta's navigation sample (tap_forward, tap_back, tap_exit,
  swipe_forward);
- refusals: error_100_views_not_supported_for_media_product_type_airbyte_pr62902.json (several
  metrics are named together, "the follows, profile_visits metric", as peers parse it) and
  error_100_subcode_2108006_media_before_business_conversion_airbyte.json.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from ._errors import JSON, GraphReject, from_sample, graph_error, invalid_parameter
from ._metrics import apportion, stable_hash
from ._model import SimMedia

# plinxore's live list, in Meta's order
_MEDIA_METRIC_LIST = (
    "impressions, reach, replies, saved, likes, comments, shares, total_interactions, follows, "
    "profile_visits, profile_activity, navigation, ig_reels_video_view_total_time, "
    "ig_reels_avg_watch_time, views, reels_skip_rate, reposts, facebook_views, "
    "crossposted_views, total_views, total_likes, total_comments, link_clicks"
)
VALID_MEDIA_METRICS: tuple[str, ...] = tuple(_MEDIA_METRIC_LIST.split(", "))
_POST = frozenset(
    {"views", "reach", "likes", "comments", "saved", "shares", "total_interactions", "reposts"}
)
_TOTALS = frozenset({"total_views", "total_likes", "total_comments"})  # paid activity included
_FEED = _POST | _TOTALS | {"follows", "profile_visits", "profile_activity"}
_REELS = _POST | _TOTALS | {"ig_reels_avg_watch_time", "ig_reels_video_view_total_time"}
_REELS |= {"reels_skip_rate"}
_STORY = frozenset({"views", "reach", "replies", "shares", "total_interactions"}) | {
    "follows",
    "profile_visits",
    "profile_activity",
    "navigation",
}
_FEED_VIDEO = frozenset({"reach", "saved"})
#: metrics accepted but not simulated: answered with no item (empty is not zero)
NOT_SIMULATED = _TOTALS | {"reels_skip_rate"}
#: Meta's media insights breakdowns and the one metric each applies to
BREAKDOWNS: dict[str, tuple[str, tuple[str, ...], tuple[int, ...]]] = {
    "action_type": (
        "profile_activity",
        ("bio_link_clicked", "call", "direction", "email", "other", "text"),
        (50, 8, 12, 15, 5, 10),
    ),
    "story_navigation_action_type": (
        "navigation",
        ("tap_forward", "tap_back", "tap_exit", "swipe_forward"),
        (60, 15, 15, 10),
    ),
}
# Titles and descriptions: reach and saved from the pyfacebook docs-derived sample,
# profile_activity from the live-looking one, navigation from Meta's sample response, the
# descriptions of comments, follows, likes, profile_visits, shares and total_interactions
# from Meta's metric table; the rest invented in the same voice.
_TEXT: dict[str, tuple[str, str]] = {
    "reach": ("Reach", "Total number of unique accounts that have seen the media object"),
    "saved": ("Saved", "Total number of unique accounts that have saved the media object"),
    "views": ("Views", "The number of times your content was played or displayed."),
    "likes": ("Likes", "The number of likes on your post."),
    "comments": ("Comments", "The number of comments on your post."),
    "shares": ("Shares", "The number of shares of your post."),
    "reposts": ("Reposts", "The number of times your post was reposted."),
    "follows": ("Follows", "The number of accounts that started following you."),
    "profile_visits": ("Profile visits", "The number of times your profile was visited."),
    "replies": ("Replies", "The number of replies to your story."),
    "total_interactions": (
        "Interactions",
        "The number of likes, saves, comments and shares on your post minus the number of "
        "unlikes, unsaves and deleted comments.",
    ),
    "profile_activity": (
        "Profile activity",
        "[IG Insights] This header is the name of a metric that appears on an educational info "
        "sheet for a particular for a particular post, story, video or promotion. This metric "
        "is the sum of all profile actions people take when they engage with this content.",
    ),
    "navigation": (
        "Navigation",
        "This is the total number of actions taken from your story. These are made up of "
        "metrics like exited, forward, back and next story.",
    ),
    "ig_reels_avg_watch_time": (
        "Average watch time",
        "The average amount of time spent playing your reel, in milliseconds.",
    ),
    "ig_reels_video_view_total_time": (
        "Watch time",
        "The total amount of time your reel was played, in milliseconds, including replays.",
    ),
}
# Lifetime totals a media object grows towards, as percent ranges of something else: reach of
# the followers (by product type), the rest of reach or of another metric. Invented, plausible.
_REACH_OF_FOLLOWERS = {"FEED": (15, 60), "REELS": (30, 250), "AD": (50, 300), "STORY": (5, 25)}
_SHARE_OF: dict[str, tuple[str, int, int]] = {
    "views": ("reach", 120, 220),
    "likes": ("reach", 3, 12),
    "comments": ("likes", 2, 12),
    "saved": ("reach", 1, 4),
    "shares": ("reach", 1, 4),
    "reposts": ("shares", 0, 30),
    "follows": ("reach", 0, 2),
    "profile_visits": ("reach", 1, 6),
    "profile_activity": ("profile_visits", 10, 50),
    "replies": ("reach", 0, 3),
    "navigation": ("views", 70, 130),
}
_HALF_GROWN = 36  # hours after posting when a count is half way to its lifetime total
_TAIL_DAYS = 365  # after the quick rise, old media keep gaining 1/200 of it a day for a year
# invented: Graph's enum wording, as for metric_type
_UNKNOWN_BREAKDOWN = "(#100) breakdown[{index}] must be one of the following values: {allowed}"
# Meta's media insights reference: "If you request a metric that doesn't support breakdowns,
# the API will return an error ("An unknown error has occurred.")"; code 1 as Graph's unknown
# error (status and envelope invented)
_BREAKDOWN_MISUSED = "An unknown error has occurred."
# error_100_views_not_supported_for_media_product_type_airbyte_pr62902.json
_NOT_SUPPORTED = (
    "(#100) The Media Insights API does not support the {metrics} metric for this media "
    "product type."
)
# error_100_subcode_2108006_media_before_business_conversion_airbyte.json
BEFORE_CONVERSION: JSON = {
    "error": {
        "message": "Invalid parameter",
        "type": "OAuthException",
        "code": 100,
        "error_data": {"blame_field_specs": [[""]]},
        "error_subcode": 2108006,
        "is_transient": False,
        "error_user_title": "Media posted before business account conversion",
        "error_user_msg": "The media was posted before the most recent time that the user's "
        "account was converted to a business account from a personal account.",
        "fbtrace_id": "AVul-nTRBqOlFGJxWKQv1g-",
    }
}


def supported_metrics(media: SimMedia) -> frozenset[str]:
    """The metrics Meta serves for this media object's product type (none for carousel
    children: "Insights data is not available for any media within an album")."""
    if media.media_product_type is None:
        return frozenset()
    if media.media_product_type == "STORY":
        return _STORY
    if media.media_product_type == "REELS":
        return _REELS
    if media.media_type == "VIDEO" and media.media_product_type == "FEED":
        return _FEED_VIDEO
    return _FEED  # FEED images and albums, and AD


def _grown(final: int, age: timedelta) -> int:
    """A count `age` after posting: a quick rise towards `final`, then a slow tail, so that
    daily snapshots of a recent post differ (integer arithmetic: the same everywhere)."""
    hours = max(0, int(age.total_seconds()) // 3600)
    days = min(age.days, _TAIL_DAYS)
    return final * hours // (hours + _HALF_GROWN) + days * final // 200


def _final(media: SimMedia, followers: int, metric: str) -> int:
    """The lifetime total `metric` grows towards, deterministic per media."""
    if metric == "reach":
        product = media.media_product_type or "FEED"
        low, high = _REACH_OF_FOLLOWERS[product]
        base = followers
    else:
        of, low, high = _SHARE_OF[metric]
        base = _final(media, followers, of)
    percent = low + stable_hash(media.media_id, metric) % (high - low + 1)
    return base * percent // 100


def lifetime_value(media: SimMedia, followers: int, metric: str, now: datetime) -> int:
    """A metric's lifetime value at `now`, growing with the time since posting."""
    age = now - media.timestamp
    if metric == "total_interactions":
        parts = ("replies", "shares") if media.media_product_type == "STORY" else _INTERACTIONS
        return sum(lifetime_value(media, followers, part, now) for part in parts)
    if metric in ("ig_reels_avg_watch_time", "ig_reels_video_view_total_time"):
        average_ms = 2_500 + stable_hash(media.media_id, "watch") % 11_500
        if metric == "ig_reels_avg_watch_time":
            return average_ms
        return lifetime_value(media, followers, "views", now) * average_ms
    return _grown(_final(media, followers, metric), age)


_INTERACTIONS = ("likes", "comments", "saved", "shares")


def _breakdown(media: SimMedia, name: str, total: int) -> list[JSON]:
    _, values, bases = BREAKDOWNS[name]
    weights = [
        b * (50 + stable_hash(media.media_id, name, v) % 101)
        for v, b in zip(values, bases, strict=True)
    ]
    return [
        {"dimension_values": [value], "value": share}
        for value, share in zip(values, apportion(total, weights), strict=True)
        if share > 0
    ]


def check_media_insights(
    media: SimMedia, params: Mapping[str, str]
) -> tuple[list[str], str | None]:
    """The metrics and breakdown of a valid request; Meta's refusal otherwise, in this order:
    metric names, the media's conversion (2108006), the product type, the breakdown."""
    metrics = [m.strip() for m in params.get("metric", "").split(",") if m.strip()]
    if not metrics:
        raise invalid_parameter("(#100) The parameter metric is required")  # invented
    for index, metric in enumerate(metrics):
        if metric not in VALID_MEDIA_METRICS:
            raise invalid_parameter(
                f"(#100) metric[{index}] must be one of the following values: " + _MEDIA_METRIC_LIST
            )
    if media.before_conversion:
        raise GraphReject(from_sample(BEFORE_CONVERSION))
    supported = supported_metrics(media)
    refused = [m for m in metrics if m not in supported]
    if refused:
        raise invalid_parameter(_NOT_SUPPORTED.format(metrics=", ".join(refused)))
    breakdown = params.get("breakdown", "").strip() or None
    if breakdown is not None:
        if breakdown not in BREAKDOWNS:
            allowed = ", ".join(BREAKDOWNS)
            raise invalid_parameter(_UNKNOWN_BREAKDOWN.format(index=0, allowed=allowed))
        if any(m != BREAKDOWNS[breakdown][0] for m in metrics):
            raise GraphReject(graph_error(1, _BREAKDOWN_MISUSED), status=500)
    return metrics, breakdown


def media_insights_body(
    media: SimMedia, followers: int, metrics: list[str], breakdown: str | None, now: datetime
) -> JSON:
    """Lifetime items in request order, shaped like the pyfacebook media samples: `values`
    without end_time, and `total_value` with the breakdown when one was asked for."""
    data: list[JSON] = []
    for metric in metrics:
        if metric in NOT_SIMULATED:
            continue
        value = lifetime_value(media, followers, metric, now)
        title, description = _TEXT[metric]
        item: JSON = {
            "name": metric,
            "period": "lifetime",
            "values": [{"value": value}],
            "title": title,
            "description": description,
        }
        if breakdown is not None:
            results = _breakdown(media, breakdown, value)
            item["total_value"] = {
                "value": value,
                "breakdowns": [{"dimension_keys": [breakdown], "results": results}],
            }
        item["id"] = f"{media.media_id}/insights/{metric}/lifetime"
        data.append(item)
    return {"data": data}
