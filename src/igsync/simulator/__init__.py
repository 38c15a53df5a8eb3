"""A test double of Meta's Graph API for Instagram insights, media and stories, shipped with igsync.

`igsync demo` runs against it in-process (`Simulator.transport()`); tests and benchmarks run
against it over loopback HTTP (`serve_in_thread`, or `python -m igsync.simulator`). Every body it
answers is built from real Graph responses (the samples listed in graph_samples/SOURCES.md) and
follows the rules of GRAPH_API.md, so a client that works here should work against Meta.

What it fakes:
    `GET /{version}/{ig-user-id}/insights` for every account metric Meta serves at period=day
    (reach, follower_count, views, likes, comments, shares, saves, replies, reposts, …): the
    time_series vs total_value rules, the breakdowns each metric takes, retired metrics
    (impressions, …) refused with Meta's "must be one of" list of the current ones, other
    validation errors in Meta's order and wording, lookback and 30-day window
    limits, `end_time` at the account's local midnight written in UTC (DST-correct), a partial
    current day, unique-account totals that are not sums, breakdowns, empty data, paging URLs
    that carry the access token; deterministic values per (account, metric, day, revision);
    the audience metrics at period=lifetime (`_audience`): follower_demographics,
    engaged_audience_demographics and reached_audience_demographics as total_value by age,
    city, country, gender or a combination, over timeframe=this_week|this_month, top 45
    values only, and online_followers as 24 hourly values per day of the last 30 days, none
    of them under 100 followers;
    What each account posted (`_posts`, `_edges`): `GET /{ig-user-id}/media` (posts, reels,
    ads: `SimAccount.media_count` of them, one every 1-3 days back from the simulator's first
    day, newest first, with `fields`, `limit`, `after`/`before` cursors and `since`/`until`)
    and `GET /{ig-user-id}/stories` (the last 24 hours of `stories_per_day` stories a day),
    both with Meta's cursor paging (`_media`); `GET /{ig-media-id}?fields` and
    `/{ig-media-id}/children`; `GET /{ig-media-id}/insights` (`_media_insights`): lifetime
    values that grow with the time since posting, the metrics each product type serves (FEED,
    REELS, STORY, AD; old FEED videos only reach and saved), Meta's "does not support … for
    this media product type" for the others, subcode 2108006 for media posted before the
    business conversion (`SimAccount.media_before_conversion`), the action_type and
    story_navigation_action_type breakdowns, story insights for 24 hours only; `me` as the
    token's account. `Simulator.media()` and `Simulator.stories()` show what is listed now.
    `GET /me/accounts` (`_pages`, Facebook host): the Pages of a Facebook-Login user token
    (`issue_user_token(pages)`; else the Page of the token's account, or in permissive mode
    one Page for every account), each with its `instagram_business_account{id,username}`
    when one is linked, with Meta's cursor paging.

    token checks (missing, expired, logged out, unknown, `appsecret_proof`); per-account usage
    headers and code 80002 at the limit; latency; injected faults (throttles with their usage
    headers, 5xx, 502 and 503 HTML from a proxy, an HTML page with 200, truncated JSON, empty
    data, a connection cut mid-answer (over loopback), held responses, expired, invalid,
    logged-out, password-changed (190/460) or app-removed (190/458) tokens, a metric Meta no
    longer lists, metric_type=total_value required, code 10, missing objects), on any
    endpoint, batch items included (`FaultKind`).

    Both of Meta's hosts (GRAPH_API §7), each refusing the other login's tokens with 190
    "Cannot parse access token": the Facebook host (insights, media, stories, batch, the
    exchange, debug_token) and the Instagram host (insights, media, stories,
    refresh_access_token). In-process, requests to
    `graph.instagram.com` reach the Instagram host; over loopback, each host has its own port.
    `SimRequest.host` says which host a request reached.

    The token endpoints (`_oauth`): `oauth/access_token` (fb_exchange_token),
    `refresh_access_token` (ig_refresh_token: 24 h minimum age, served without a version as
    graph.instagram.com does) and `debug_token`, over a registry of tokens with an account, a
    kind, and issue and expiry times on the injected clock (`issue_token`, `token_info`,
    `expire_token`, `revoke_token`). Exchanged and refreshed tokens stay valid until they
    expire. Strict mode knows only registered tokens; permissive mode takes any other token as
    valid, never-expiring and bound to no account. With `require_appsecret_proof`, every call
    carrying an access token (insights, refresh_access_token, debug_token) needs its proof;
    the exchange carries none.

What it does not fake (yet):
    periods week and days_28; threads_* metrics (valid names, served as no data); the media
    metrics reels_skip_rate and total_views/total_likes/total_comments (accepted, served as
    no data); node lookups of accounts (`GET /{ig-user-id}`); the tags, comments and
    live_media edges; code 10 "Not enough viewers"; the authorization-code and
    ig_exchange_token flows; `data_access_expires_at` ending access
    (reported, not enforced); Meta's other headers (x-fb-trace-id, facebook-api-version).

Usage::

    sim = Simulator(demo_accounts(2), now=lambda: datetime(2026, 11, 20, 12, tzinfo=UTC))
    async with httpx.AsyncClient(transport=sim.transport(), base_url="https://graph.test") as c:
        r = await c.get("/v27.0/17841400000000001/insights", params={...})
"""

from ._app import Simulator
from ._model import (
    Endpoint,
    Fault,
    FaultKind,
    SimAccount,
    SimMedia,
    SimRequest,
    TokenInfo,
    TokenKind,
    demo_accounts,
)
from ._pages import SimPage
from ._server import Served, serve_in_thread

__all__ = [
    "Endpoint",
    "Fault",
    "FaultKind",
    "Served",
    "SimAccount",
    "SimMedia",
    "SimPage",
    "SimRequest",
    "Simulator",
    "TokenInfo",
    "TokenKind",
    "demo_accounts",
    "serve_in_thread",
]
