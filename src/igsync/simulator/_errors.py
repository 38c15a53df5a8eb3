"""Error bodies exactly as Graph API sends them, copied from /work/shared/graph_samples/.

Each body keeps the sample's keys and key order; only `fbtrace_id` is fresh per answer (Meta
issues one per request). Samples marked `_partial` lack `type` and/or `fbtrace_id`; every live
error carries both (GRAPH_API §3), so `graph_error` adds them. Messages with no sample behind
them are marked "invented" where they are built.
"""

from __future__ import annotations

import copy
import json
import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.responses import JSONResponse, Response

JSON = dict[str, Any]

# error_4_application_request_limit_nodejs_sdk_issue97.json (live)
APP_REQUEST_LIMIT: JSON = {
    "error": {
        "message": "(#4) Application request limit reached",
        "type": "OAuthException",
        "is_transient": True,
        "code": 4,
        "fbtrace_id": "FlQgl+5U8pF",
    }
}
# error_17_user_request_limit_python_sdk_issue416.json (live, HTTP 400)
USER_REQUEST_LIMIT: JSON = {
    "error": {
        "message": "(#17) User request limit reached",
        "type": "OAuthException",
        "is_transient": True,
        "code": 17,
        "fbtrace_id": "HsDsvTm9trr",
    }
}
# error_32_page_request_limit_meta_docs_sample.json (docs)
PAGE_REQUEST_LIMIT: JSON = {
    "error": {
        "message": "(#32) Page request limit reached",
        "type": "OAuthException",
        "code": 32,
        "fbtrace_id": "Fz54k3GZrio",
    }
}
# error_613_rate_limit_partial.json (live, HTTP 400; fbtrace_id was elided by the source)
RATE_LIMIT_613: JSON = {
    "error": {
        "message": "(#613) Calls to this api have exceeded the rate limit.",
        "type": "OAuthException",
        "code": 613,
        "fbtrace_id": "...",
    }
}
# error_2_unexpected_transient_airbyte_issue1814_partial.json (live, HTTP 500)
UNEXPECTED_TRANSIENT: JSON = {
    "error": {
        "message": "An unexpected error has occurred. Please retry your request later.",
        "type": "OAuthException",
        "is_transient": True,
        "code": 2,
        "fbtrace_id": "AJ3EQr2jeWlBOTQFNzQWh",
    }
}
# error_10_application_no_permission_airbyte.json
NO_PERMISSION: JSON = {
    "error": {
        "message": "(#10) Application does not have permission for this action",
        "type": "OAuthException",
        "code": 10,
        "fbtrace_id": "GHI789",
    }
}
# error_190_subcode_463_session_expired.json; the dates are filled in per token
SESSION_EXPIRED: JSON = {
    "error": {
        "message": "Error validating access token: Session has expired on {expired}. "
        "The current time is {now}.",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 463,
        "fbtrace_id": "AWpk5h2ceG6",
    }
}
# error_190_subcode_467_user_logged_out.json (live; from a v2.1 call that predates fbtrace_id)
USER_LOGGED_OUT: JSON = {
    "error": {
        "message": "Error validating access token: The session is invalid because the user "
        "logged out.",
        "type": "OAuthException",
        "code": 190,
        "error_subcode": 467,
    }
}
# 190/458 and 190/460 have no live body in graph_samples/ (the 460 sample is Meta's generic
# envelope, "Message describing the error"); the messages are Graph's wording as users quote
# it, in the envelope of the 463 sample. {app_id} is the app the user removed.
APP_NOT_AUTHORIZED = (
    "Error validating access token: The user has not authorized application {app_id}."
)
SESSION_INVALIDATED = (
    "Error validating access token: The session has been invalidated because the user changed "
    "their password or Facebook has changed the session for security reasons."
)
# error_100_subcode_33_graphmethodexception_airbyte_issue4028.json (live); {method}, {id} filled in
UNSUPPORTED_REQUEST: JSON = {
    "error": {
        "message": "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation. Please read the "
        "Graph API documentation at https://developers.facebook.com/docs/graph-api",
        "type": "GraphMethodException",
        "code": 100,
        "error_subcode": 33,
        "fbtrace_id": "AXd8qVqHmYsMgTT3LS4c5fF",
    }
}
# error_100_requires_appsecret_proof_pyfacebook.json
APPSECRET_PROOF_REQUIRED: JSON = {
    "error": {
        "message": "(#100) Pages Public Content Access requires either app secret proof or an "
        "app token",
        "type": "OAuthException",
        "code": 100,
        "fbtrace_id": "A1m6KK6iBqvjzPeQd4DYbKM",
    }
}
# error_100_since_param_not_valid_airbyte_fixture.json (message quoted from a real on-call case)
SINCE_NOT_VALID: JSON = {
    "error": {
        "message": "(#100) since param is not valid. "
        "Metrics data is available for the last 2 years",
        "type": "OAuthException",
        "code": 100,
        "fbtrace_id": "ABC123",
    }
}

# Messages of the `_partial` samples (message and code known; type/fbtrace_id added).
# error_100_metric_must_be_one_of_partial.json, validated against v22.0; Meta's order kept.
_METRIC_LIST = (
    "reach, follower_count, website_clicks, profile_views, online_followers, accounts_engaged, "
    "total_interactions, likes, comments, shares, saves, replies, engaged_audience_demographics, "
    "reached_audience_demographics, follower_demographics, follows_and_unfollows, "
    "profile_links_taps, views, threads_likes, threads_replies, reposts, quotes, "
    "threads_followers, threads_follower_demographics, content_views, threads_views, "
    "threads_clicks, threads_reposts"
)
VALID_METRICS: tuple[str, ...] = tuple(_METRIC_LIST.split(", "))
METRIC_MUST_BE_ONE_OF = (
    "(#100) metric[{index}] must be one of the following values: " + _METRIC_LIST
)
# error_100_metric_type_total_value_required_partial.json (live)
TOTAL_VALUE_REQUIRED = (
    "(#100) The following metrics ({metrics}) should be specified with parameter "
    "metric_type=total_value"
)
# error_100_follower_count_last_30_days_partial.json (live)
FOLLOWER_COUNT_LAST_30_DAYS = (
    "(#100) (follower_count) metric only supports querying data for the last 30 days excluding "
    "the current day"
)

# -- token endpoints (GRAPH_API §4). Only 190/463 and 190/467 have samples in graph_samples/;
# each message below names its own source, and where it comes from.
# An answer to a call without any token (message and code real; envelope invented).
TOKEN_REQUIRED = "An access token is required to request this resource."  # code 104
# php-graph-sdk#50 (live): fb_exchange_token without client_id; code 101.
MISSING_CLIENT_ID = "Missing client_id parameter."
# Live answer to oauth/access_token with grant_type=baz (quoted in API-design write-ups): Graph
# reads a grant it does not know as the authorization-code flow; code 191. Assumed the same
# for a missing grant_type.
MISSING_REDIRECT_URI = "Missing redirect_uri parameter."
# Thuzi/facebook-node-sdk#82 (live) and a third-party fixture with a real-looking fbtrace_id;
# code 1 (which §3 files under transient: a client must not retry it).
EXCHANGE_TOKEN_NOT_SPECIFIED = "fb_exchange_token parameter not specified"
# diowa/icare#5 (live): a wrong client_id; code 101.
INVALID_APPLICATION_ID = "Error validating application. Invalid application ID."
# facebookarchive/php-graph-sdk#538 (live): a wrong client_secret; code 1, not transient.
# Assumed the same for a missing client_secret.
INVALID_CLIENT_SECRET = "Error validating client secret."
# A third-party fixture of fb_exchange_token with a bad token (real-looking fbtrace_id); 190.
INVALID_ACCESS_TOKEN = "Invalid OAuth access token."
# User reports (190, no subcode), and bk-rs/facebook-rs's debug_token capture notes for an
# unparseable input_token; no body in graph_samples/.
CANNOT_PARSE_TOKEN = "Invalid OAuth access token - Cannot parse access token"
# debug_token with an app token whose secret is wrong: 190, HTTP 400 (an integration test
# against the real API, and users' notes).
INVALID_TOKEN_SIGNATURE = "Invalid OAuth access token signature."
# bk-rs/facebook-rs (live, HTTP 400): debug_token without an app token; code 100.
APP_TOKEN_REQUIRED = (
    "(#100) You must provide an app access token, or a user access token that is an owner or "
    "developer of the app"
)
# Graph's wording for a missing required parameter elsewhere; not captured for debug_token.
PARAMETER_REQUIRED = "(#100) The parameter {name} is required"
# invented: Meta documents the 24-hour rule but no error body for it was found; code 100, typed
# IGApiException as graph.instagram.com types its code 100 errors (in2code-de/instagram#41).
REFRESH_TOO_EARLY = "(#100) The access token can only be refreshed once it is at least 24 hours old"
# invented: no body found for refresh_access_token with another grant_type; as above, in the
# wording Graph uses for an enum parameter (see metric_type in _insights).
REFRESH_GRANT_TYPE = (
    '(#100) Param grant_type must be one of {{IG_REFRESH_TOKEN}} - got "{grant_type}"'
)
IG_ERROR_TYPE = "IGApiException"

# Meta reports token times in its own zone, as in the 190/463 sample ("04:00:00 PST").
_META_ZONE = ZoneInfo("America/Los_Angeles")


class GraphReject(Exception):
    """Raised inside a handler to answer with an error; the handler turns it into a response."""

    def __init__(self, body: JSON, *, status: int = 400, headers: dict[str, str] | None = None):
        super().__init__(body["error"]["message"])
        self.body = body
        self.status = status
        self.headers = dict(headers or {})

    def response(self) -> Response:
        return JSONResponse(self.body, status_code=self.status, headers=self.headers)


def fresh_trace_id() -> str:
    """A new id shaped like the samples' ("AXd8qVqHmYsMgTT3LS4c5fF": 23 url-safe characters)."""
    return "A" + secrets.token_urlsafe(17)[:22]


def from_sample(sample: JSON, **fill: str) -> JSON:
    """A copy of `sample` with a fresh fbtrace_id and `{placeholders}` in its message filled."""
    body = copy.deepcopy(sample)
    error = body["error"]
    if fill:
        error["message"] = error["message"].format(**fill)
    error["fbtrace_id"] = fresh_trace_id()
    return body


def graph_error(
    code: int,
    message: str,
    *,
    error_type: str = "OAuthException",
    subcode: int | None = None,
    is_transient: bool | None = None,
) -> JSON:
    """The generic envelope of GRAPH_API §3, in the key order the samples use."""
    error: JSON = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if is_transient is not None:
        error["is_transient"] = is_transient
    error["fbtrace_id"] = fresh_trace_id()
    return {"error": error}


def invalid_parameter(message: str) -> GraphReject:
    """Code 100, HTTP 400: how every insights parameter error arrives (GRAPH_API §1)."""
    return GraphReject(graph_error(100, message))


def meta_time(moment: datetime) -> str:
    """'Thursday, 10-Dec-15 04:00:00 PST', the format of the 190/463 sample."""
    return moment.astimezone(_META_ZONE).strftime("%A, %d-%b-%y %H:%M:%S %Z")


def session_expired(expired: datetime, now: datetime) -> JSON:
    return from_sample(SESSION_EXPIRED, expired=meta_time(expired), now=meta_time(now))


def unsupported_request(method: str, object_id: str) -> JSON:
    return from_sample(UNSUPPORTED_REQUEST, method=method.lower(), id=object_id)


def usage_header(figures: dict[str, int]) -> str:
    """A usage header value: compact JSON, as Meta sends it (header_x_*_live_capture.json)."""
    return json.dumps(figures, separators=(",", ":"))


def business_usage_header(ids: tuple[str, ...], percent: int, regain_minutes: int) -> str:
    """`x-business-use-case-usage` nested per id; Instagram calls are reported under two ids
    with the same figures (header_x_business_use_case_usage_instagram_two_ids_live_capture.json).
    """
    entry = {
        "type": "instagram",
        "call_count": percent,
        "total_cputime": percent // 4,
        "total_time": percent // 4,
        "estimated_time_to_regain_access": regain_minutes,
    }
    return json.dumps({i: [dict(entry)] for i in ids}, separators=(",", ":"))
