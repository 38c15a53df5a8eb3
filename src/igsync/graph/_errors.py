"""Graph API errors and usage headers: what went wrong, and how hard to back off (§3)."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from typing import Any

import httpx

from igsync.errors import ErrorKind, GraphError
from igsync.redact import redact

# §3: throttling arrives with these codes, often as HTTP 400 rather than 429.
_THROTTLE_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80001, 80015))
_AUTH_CODES = frozenset({102, 104, 190})
# Code 1 is also "Error validating client secret." (HTTP 400): it is transient only when Meta
# says so or the status is 5xx, which the is_transient/status test below covers.
_TRANSIENT_CODES = frozenset({2})
OBJECT_MISSING_SUBCODE = 33


def classify(
    code: int | None, subcode: int | None, is_transient: bool, http_status: int | None
) -> ErrorKind:
    """Map an error to how we react to it (§3)."""
    if code in _THROTTLE_CODES or http_status == 429:
        return ErrorKind.THROTTLED
    if code in _AUTH_CODES:
        return ErrorKind.AUTH
    if code == 10 or (code is not None and 200 <= code <= 299):
        return ErrorKind.PERMISSION
    if code in _TRANSIENT_CODES or is_transient or (http_status or 0) >= 500:
        return ErrorKind.TRANSIENT
    if code == 100 and subcode == OBJECT_MISSING_SUBCODE:
        # Sometimes a disguised rate limit: retried once, then permanent (see _request).
        return ErrorKind.TRANSIENT
    return ErrorKind.INVALID


class TokenProblem(StrEnum):
    """What a code-190 refusal says of the token, and so what may fix it.

    Subcodes from Meta's "Handling Errors" page (graph-api/guides/error-handling,
    "Authentication Error Subcodes"); "Cannot parse" from GRAPH_API.md §7.
    """

    #: 463 (and 190/0 "Session has expired"): only a new login helps; Meta refreshes no
    #: expired token, of either kind (GRAPH_API.md §4)
    EXPIRED = "expired"
    #: 460 password changed, 461 app reinstalled, 465/466 invalidated, 467 logged out
    INVALIDATED = "invalidated"
    #: 458: the user removed the app
    APP_REMOVED = "app_removed"
    #: 459 checkpointed, 464 unconfirmed user: the user must log in on facebook.com first
    CHECKPOINT = "checkpoint"
    #: "Invalid OAuth access token - Cannot parse access token": the host cannot read the
    #: token at all, which is what a token of the other login kind gets (or a mangled one)
    UNPARSEABLE = "unparseable"
    #: no subcode (or one not listed): expired, revoked or invalid; a refresh may help
    UNKNOWN = "unknown"

    @property
    def needs_login(self) -> bool:
        """Only a new login by the person can fix it: refreshing is pointless."""
        return self in (self.EXPIRED, self.INVALIDATED, self.APP_REMOVED, self.CHECKPOINT)


_SUBCODE_PROBLEMS = {
    458: TokenProblem.APP_REMOVED,
    459: TokenProblem.CHECKPOINT,
    460: TokenProblem.INVALIDATED,
    461: TokenProblem.INVALIDATED,
    463: TokenProblem.EXPIRED,
    464: TokenProblem.CHECKPOINT,
    465: TokenProblem.INVALIDATED,
    466: TokenProblem.INVALIDATED,
    467: TokenProblem.INVALIDATED,
}


def token_problem(error: GraphError) -> TokenProblem | None:
    """What an AUTH error says of the token (None: the error is not about the token)."""
    if error.kind != ErrorKind.AUTH:
        return None
    if error.subcode in _SUBCODE_PROBLEMS:
        return _SUBCODE_PROBLEMS[error.subcode]
    message = error.message.lower()
    if "cannot parse access token" in message:
        return TokenProblem.UNPARSEABLE
    if "session has expired" in message:  # seen live as 190 with subcode 0 (graph_samples)
        return TokenProblem.EXPIRED
    return TokenProblem.UNKNOWN


#: Meta's answer to a metric it does not serve, retired ones included (GRAPH_API.md §1):
#: "(#100) metric[0] must be one of the following values: reach, follower_count, …"
_MUST_BE_ONE_OF = re.compile(
    r"metric\[\d+\] must be one of the following values:\s*(.+)", re.DOTALL
)


def accepted_metrics(error: GraphError) -> frozenset[str] | None:
    """The metric names Meta says it accepts, read from its refusal of a metric; None when
    `error` is not that refusal.

    A retired or unknown metric fails with code 100 and `(#100) metric[<i>] must be one of the
    following values: <names>` (graph_samples/error_100_metric_must_be_one_of_partial.json,
    validated live against v22.0 on 2026-06-24; GRAPH_API.md §1, §7), so a tool can name
    exactly what to ask instead. The list holds Threads metrics too; callers compare it with
    the catalogue rather than trust it blindly.
    """
    if error.code != 100:
        return None
    found = _MUST_BE_ONE_OF.search(error.message)
    if found is None:
        return None
    names = frozenset(n.strip() for n in found.group(1).split(",") if n.strip())
    return names or None


def _header_json(headers: httpx.Headers, name: str) -> Any:
    raw = headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def regain_seconds(headers: httpx.Headers) -> float | None:
    """Worst `estimated_time_to_regain_access` (minutes) across the nested usage header (§3)."""
    usage = _header_json(headers, "x-business-use-case-usage")
    if not isinstance(usage, dict):
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access") or 0
        for entries in usage.values()
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    worst = max(minutes, default=0)
    return float(worst) * 60 if worst else None


def usage_percent(headers: httpx.Headers) -> float | None:
    """Worst quota figure from either usage header; None when absent (absent is not 0%)."""
    figures = [f for f in (app_usage(headers), business_usage(headers)) if f is not None]
    return max(figures) if figures else None


def app_usage(headers: httpx.Headers) -> float | None:
    """Worst figure of `x-app-usage`: the app's quota, which every call of the app shares."""
    app = _header_json(headers, "x-app-usage")
    if not isinstance(app, dict):
        return None
    figures = [float(v) for v in app.values() if isinstance(v, int | float)]
    return max(figures) if figures else None


def business_usage(headers: httpx.Headers) -> float | None:
    """Worst figure of `x-business-use-case-usage`: the quota of the account(s) the call
    touched, reported per id (GRAPH_API.md §3); other accounts have quotas of their own."""
    figures: list[float] = []
    business = _header_json(headers, "x-business-use-case-usage")
    if isinstance(business, dict):
        for entries in business.values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    figures += [
                        float(entry[k])
                        for k in ("call_count", "total_cputime", "total_time")
                        if isinstance(entry.get(k), int | float)
                    ]
    return max(figures) if figures else None


def error_from_response(response: httpx.Response) -> GraphError:
    """Build a GraphError from an error answer; never carries the request URL (it holds tokens)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_from_answer(response.status_code, response.headers, body)


def error_from_answer(status: int, headers: httpx.Headers, body: Any) -> GraphError:
    """A GraphError from an error's status, headers and parsed body (None: not JSON).

    The same for a standalone answer and for one item of a batch (GRAPH_API.md §5: "treat its
    error like a standalone call's").
    """
    err = body.get("error") if isinstance(body, dict) else None
    if not isinstance(err, dict):
        kind = ErrorKind.TRANSIENT if status >= 500 else classify(None, None, False, status)
        return GraphError(f"HTTP {status} from the Graph API", kind=kind, http_status=status)
    code = err.get("code") if isinstance(err.get("code"), int) else None
    subcode = err.get("error_subcode") if isinstance(err.get("error_subcode"), int) else None
    is_transient = bool(err.get("is_transient"))
    message = str(err.get("message") or err.get("error_user_msg") or f"HTTP {status}")
    return GraphError(
        redact(message),
        kind=classify(code, subcode, is_transient, status),
        code=code,
        subcode=subcode,
        error_type=err.get("type"),
        fbtrace_id=err.get("fbtrace_id"),
        is_transient=is_transient,
        http_status=status,
        retry_after=regain_seconds(headers),
    )
