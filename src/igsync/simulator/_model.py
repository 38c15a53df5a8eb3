"""What a test configures (accounts, faults) and what it inspects afterwards (requests)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, get_args
from zoneinfo import ZoneInfo

FaultKind = Literal[
    "throttle",
    "throttle_ig",
    "user_throttle",
    "page_throttle",
    "rate_limit_613",
    "server_error",
    "bad_gateway",
    "transient",
    "timeout",
    "expired_token",
    "logged_out",
    "object_missing",
    "invalid_token",
    "unparseable_token",
    "batch_timeout",  # a batch item answered `null` (Meta timed it out); batch items only
    "app_removed",  # 190/458: the user removed the app
    "password_changed",  # 190/460: the session was invalidated (password changed)
    "unknown_metric",  # 100 "must be one of", the list without `metric` (Meta retired it)
    "metric_type_required",  # 100 "should be specified with parameter metric_type=total_value"
    "no_permission",  # 10 "Application does not have permission for this action"
    "service_unavailable",  # HTTP 503 with a proxy's HTML page
    "html_page",  # HTTP 200 with an HTML page (a captive portal or proxy login page)
    "truncated_json",  # HTTP 200 whose JSON body ends halfway
    "empty_data",  # HTTP 200 {"data": []}: Meta had no data for the request
    "connection_reset",  # headers sent, then the connection closed halfway through the body
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
# What a fault can hit, matched against the end of the request path: the versioned and the
# unversioned (graph.instagram.com style) spellings of a token endpoint are the same endpoint.
# "insights" is an account's insights; "media" the media edge and media nodes (GET /{id},
# /{id}/children); "stories" the stories edge; "media_insights" a media object's insights;
# "me/accounts" the Pages of a user token.
Endpoint = Literal[
    "insights",
    "oauth/access_token",
    "refresh_access_token",
    "debug_token",
    "media",
    "stories",
    "media_insights",
    "me/accounts",
]
ENDPOINTS: frozenset[str] = frozenset(get_args(Endpoint))
# Facebook Login user tokens (graph.facebook.com) and Instagram Login tokens
# (graph.instagram.com) are refreshed by different endpoints (GRAPH_API §4).
TokenKind = Literal["facebook_login", "instagram_login"]
TOKEN_KINDS: frozenset[str] = frozenset(get_args(TokenKind))
# The two hosts Meta serves the Instagram Platform from, each for its own login's tokens
# (GRAPH_API §7): graph.facebook.com and graph.instagram.com.
Host = Literal["facebook", "instagram"]
HOST_KINDS: dict[str, TokenKind] = {"facebook": "facebook_login", "instagram": "instagram_login"}

#: most media one account can have (the 10,000 Meta's media edge returns at most)
MAX_MEDIA = 10_000

# Zones chosen to exercise GRAPH_API §2: DST west of UTC, a half-hour offset east of UTC, DST in
# the southern hemisphere, and plain UTC.
DEMO_ZONES = (
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Europe/London",
    "America/New_York",
    "Australia/Sydney",
    "Pacific/Auckland",
    "America/Sao_Paulo",
    "UTC",
)


@dataclass
class SimAccount:
    """One Instagram professional account the simulator knows."""

    account_id: str
    tz: str = "UTC"  # IANA zone: end_time is the local midnight that ends each day (GRAPH_API §2)
    followers: int = 1500  # below 100, follower_count serves no data (GRAPH_API §1)
    empty: bool = False  # no insights at all: every insights call answers {"data": []}
    denied_metrics: frozenset[str] = frozenset()  # answer code 10 (permission) for these
    # posts, reels and ads on the media edge, one every 1-3 days back from the simulator's
    # first day; the oldest `media_before_conversion` of them predate the account's conversion
    # to a business account, so their insights answer subcode 2108006
    media_count: int = 30
    media_before_conversion: int = 2
    stories_per_day: int = 2  # stories posted each UTC day; each is listed for 24 hours

    def __post_init__(self) -> None:
        ZoneInfo(self.tz)  # fail at set-up, not in the middle of a request, on a typo'd zone
        if not 0 <= self.media_count <= MAX_MEDIA or not 0 <= self.stories_per_day <= 9:
            msg = f"media_count must be 0..{MAX_MEDIA} and stories_per_day 0..9"
            raise ValueError(msg)


@dataclass(frozen=True)
class SimMedia:
    """One media object an account posted, as the media and stories edges list it.

    Counts that grow with time (like_count, comments_count, insights) are not fields: they are
    worked out at the moment of each request.
    """

    media_id: str
    account_id: str
    media_type: str  # IMAGE, VIDEO or CAROUSEL_ALBUM (a child: IMAGE or VIDEO)
    media_product_type: str | None  # FEED, REELS, STORY or AD; None: a carousel child
    timestamp: datetime  # UTC
    shortcode: str
    caption: str | None = None  # None: posted without one (Graph leaves the field out)
    before_conversion: bool = False  # posted before the account became a business account
    children: tuple[str, ...] = ()  # a carousel album's children, in order
    parent_id: str | None = None  # a carousel child: its album


@dataclass
class Fault:
    """One injected failure; it hits the next `times` matching requests, then it is spent."""

    kind: FaultKind
    times: int = 1
    metric: str | None = None  # only requests whose `metric` list contains this
    account_id: str | None = None  # only requests for this account
    regain_minutes: int = 0  # throttle_ig: estimated_time_to_regain_access
    delay: float = 30.0  # timeout: seconds the response is held back
    # the endpoint it hits (None: every endpoint); on a token endpoint, `account_id` is the
    # account of the token the request carries, and a `metric` filter never matches
    endpoint: Endpoint | None = "insights"

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            msg = f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}"
            raise ValueError(msg)
        if self.endpoint is not None and self.endpoint not in ENDPOINTS:
            msg = f"unknown endpoint {self.endpoint!r}; expected one of {sorted(ENDPOINTS)}"
            raise ValueError(msg)


@dataclass(frozen=True)
class TokenInfo:
    """What the simulator knows of one token; a snapshot (`Simulator.token_info`)."""

    # None: minted in permissive mode from a token the simulator never issued
    account_id: str | None
    kind: TokenKind
    issued_at: datetime
    expires_at: datetime | None  # None: never expires (debug_token says expires_at 0)
    # informational (debug_token): a refresh does not extend it, and nothing enforces it
    data_access_expires_at: datetime
    revoked: bool = False  # the user logged out: 190/467 from then on


@dataclass
class SimRequest:
    """One request as the simulator saw it; `status` is 0 until the response starts."""

    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    status: int = 0
    host: Host = "facebook"  # which of Meta's two hosts it reached
    in_batch: bool = False  # an item of a batch (the batch's own POST is a request of its own)


def demo_accounts(n: int = 3) -> list[SimAccount]:
    """`n` accounts with ids 17841400000000001… whose zones cycle through `DEMO_ZONES`."""
    return [
        SimAccount(
            account_id=f"178414{i:011d}",
            tz=DEMO_ZONES[(i - 1) % len(DEMO_ZONES)],
            followers=1500 + 700 * (i - 1),
        )
        for i in range(1, n + 1)
    ]
