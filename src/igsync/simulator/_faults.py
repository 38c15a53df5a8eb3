"""Injected faults: which request a `Fault` hits, and what it answers instead."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send

from ._errors import (
    APP_NOT_AUTHORIZED,
    APP_REQUEST_LIMIT,
    CANNOT_PARSE_TOKEN,
    INVALID_ACCESS_TOKEN,
    JSON,
    METRIC_MUST_BE_ONE_OF,
    NO_PERMISSION,
    PAGE_REQUEST_LIMIT,
    RATE_LIMIT_613,
    SESSION_INVALIDATED,
    TOTAL_VALUE_REQUIRED,
    UNEXPECTED_TRANSIENT,
    USER_LOGGED_OUT,
    USER_REQUEST_LIMIT,
    GraphReject,
    business_usage_header,
    from_sample,
    graph_error,
    session_expired,
    unsupported_request,
    usage_header,
)
from ._metrics import stable_hash
from ._model import Endpoint, Fault

# Faults whose answer is a sample body as is: kind -> (sample, HTTP status). Throttles come as
# HTTP 400, not 429 (GRAPH_API §3; the code 17 and 613 sources say 400); code 2 came with 500.
_SAMPLE_FAULTS: dict[str, tuple[JSON, int]] = {
    "throttle": (APP_REQUEST_LIMIT, 400),
    "user_throttle": (USER_REQUEST_LIMIT, 400),
    "page_throttle": (PAGE_REQUEST_LIMIT, 400),
    "rate_limit_613": (RATE_LIMIT_613, 400),
    "transient": (UNEXPECTED_TRANSIENT, 500),
    "logged_out": (USER_LOGGED_OUT, 400),
    "no_permission": (NO_PERMISSION, 400),
}
# invented: 80002 is Instagram's throttle code (GRAPH_API §3) but no body was captured
IG_THROTTLE_MESSAGE = (
    "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again."
)
# invented: what a proxy in front of Graph answers; Meta's edge sends HTML, not JSON, for a 502
_BAD_GATEWAY_HTML = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
# invented: what a proxy or load balancer answers while Graph is unavailable
_UNAVAILABLE_HTML = (
    "<html><head><title>503 Service Unavailable</title></head>"
    "<body><center><h1>503 Service Unavailable</h1></center></body></html>"
)
# invented: a page a captive portal or corporate proxy serves with status 200 in Graph's place
_PORTAL_HTML = (
    "<!DOCTYPE html><html><head><title>Sign in to the network</title></head>"
    "<body><form method='post'><input name='user'></form></body></html>"
)
# the first half of an insights answer (insights_time_series_follower_count_reach_day_airbyte
# shape), as a body cut off in transit looks
_TRUNCATED_INSIGHTS = '{"data":[{"name":"reach","period":"day","values":[{"value":1,"end_time":"20'
# insights_empty_data_documented.json: "no data", not zero (GRAPH_API §1)
_EMPTY_DATA: JSON = {"data": []}
# A throttle fault reports the app at its limit (header_x_app_usage_*.json shape).
_APP_USAGE_AT_LIMIT = usage_header({"call_count": 100, "total_cputime": 25, "total_time": 25})


def page_id_of(account_id: str) -> str:
    """The Facebook Page linked to an IG account: a stable 15-digit id, like the live capture's."""
    return str(100_000_000_000_000 + stable_hash("page", account_id) % 900_000_000_000_000)


#: faults only a batch item can hit (a `null` item); a call sent alone never does
BATCH_ONLY = frozenset({"batch_timeout"})


def take_fault(
    faults: Iterable[Fault],
    endpoint: Endpoint,
    account_id: str | None,
    metrics: tuple[str, ...],
    *,
    in_batch: bool = False,
) -> Fault | None:
    """The first unspent fault that matches the request, spending one of its `times`.

    `in_batch`: only the faults that hit batch items as such (BATCH_ONLY); otherwise only the
    others."""
    for fault in faults:
        if fault.times <= 0 or (fault.kind in BATCH_ONLY) != in_batch:
            continue
        if fault.endpoint is not None and fault.endpoint != endpoint:
            continue
        if fault.metric is not None and fault.metric not in metrics:
            continue
        if fault.account_id is not None and fault.account_id != account_id:
            continue
        fault.times -= 1
        return fault
    return None


def fault_response(
    fault: Fault,
    *,
    account_id: str | None,
    node: str,
    now: datetime,
    metrics: tuple[str, ...] = (),
    app_id: str = "sim-app-id",
) -> Response:
    """What `fault` answers; `node` is the object a 100/33 names (the account, or the edge);
    `metrics` are those the request asked for (a 100 about a metric names its position)."""
    if fault.kind in _OTHER_FAULTS:
        return _OTHER_FAULTS[fault.kind](fault, metrics, app_id)
    if fault.kind in _SAMPLE_FAULTS:
        sample, status = _SAMPLE_FAULTS[fault.kind]
        headers = {"x-app-usage": _APP_USAGE_AT_LIMIT} if fault.kind == "throttle" else {}
        return JSONResponse(from_sample(sample), status_code=status, headers=headers)
    if fault.kind == "throttle_ig":
        headers = {}
        if account_id is not None:  # a token endpoint may carry a token of no known account
            ids = (page_id_of(account_id), account_id)
            headers["x-business-use-case-usage"] = business_usage_header(
                ids, 100, fault.regain_minutes
            )
        body = graph_error(80002, IG_THROTTLE_MESSAGE)
        return JSONResponse(body, status_code=400, headers=headers)
    if fault.kind == "server_error":
        # invented: code 1 has no sample; wording is Graph's generic unknown error
        body = graph_error(1, "An unknown error has occurred.", is_transient=True)
        return JSONResponse(body, status_code=500)
    if fault.kind == "bad_gateway":
        return HTMLResponse(_BAD_GATEWAY_HTML, status_code=502)
    if fault.kind == "expired_token":
        return JSONResponse(session_expired(now - timedelta(hours=1), now), status_code=400)
    if fault.kind == "invalid_token":
        return JSONResponse(graph_error(190, INVALID_ACCESS_TOKEN), status_code=400)
    if fault.kind == "unparseable_token":
        return JSONResponse(graph_error(190, CANNOT_PARSE_TOKEN), status_code=400)
    if fault.kind == "object_missing":
        return GraphReject(unsupported_request("GET", node)).response()
    msg = f"fault kind {fault.kind!r} has no answer"  # "timeout" is handled by the caller
    raise AssertionError(msg)


def _must_be_one_of(fault: Fault, metrics: tuple[str, ...], app_id: str) -> Response:
    # Meta lists the metrics it accepts today; a retired one is missing from the list
    # (error_100_metric_must_be_one_of_partial.json, GRAPH_API §1, §7).
    gone = fault.metric or (metrics[0] if metrics else "")
    index = metrics.index(gone) if gone in metrics else 0
    message = METRIC_MUST_BE_ONE_OF.format(index=index)
    prefix, listed = message.split(": ", 1)
    kept = ", ".join(m for m in listed.split(", ") if m != gone)
    return JSONResponse(graph_error(100, f"{prefix}: {kept}"), status_code=400)


def _total_value_required(fault: Fault, metrics: tuple[str, ...], app_id: str) -> Response:
    named = fault.metric or ", ".join(metrics)
    return JSONResponse(graph_error(100, TOTAL_VALUE_REQUIRED.format(metrics=named)), 400)


class _CutResponse(Response):
    """Headers and the first half of a body whose Content-Length promises all of it; then the
    app returns. Over loopback the server closes the connection (the client reads a body cut
    short: httpx's RemoteProtocolError). Loopback only: in-process, httpx's ASGITransport
    fails the unfinished response with an AssertionError no real network raises."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send(
            {
                "type": "http.response.body",
                "body": self.body[: len(self.body) // 2],
                "more_body": True,
            }
        )


_OTHER_FAULTS: dict[str, Callable[[Fault, tuple[str, ...], str], Response]] = {
    "app_removed": lambda f, m, app_id: JSONResponse(
        graph_error(190, APP_NOT_AUTHORIZED.format(app_id=app_id), subcode=458), 400
    ),
    "password_changed": lambda f, m, a: JSONResponse(
        graph_error(190, SESSION_INVALIDATED, subcode=460), 400
    ),
    "unknown_metric": _must_be_one_of,
    "metric_type_required": _total_value_required,
    "service_unavailable": lambda f, m, a: HTMLResponse(_UNAVAILABLE_HTML, status_code=503),
    "html_page": lambda f, m, a: HTMLResponse(_PORTAL_HTML, status_code=200),
    "truncated_json": lambda f, m, a: Response(
        _TRUNCATED_INSIGHTS, status_code=200, media_type="application/json"
    ),
    "empty_data": lambda f, m, a: JSONResponse(_EMPTY_DATA),
    "connection_reset": lambda f, m, a: _CutResponse(
        json.dumps(_EMPTY_DATA | {"paging": {}}), media_type="application/json"
    ),
}


async def client_left_while_held(request: Request, delay: float) -> bool:
    """Hold for `delay` seconds, ending early if the client hangs up (its timeout fired), so
    a held request does not outlive its caller or hold up the server's shutdown."""
    with anyio.move_on_after(delay):
        while (await request.receive())["type"] != "http.disconnect":
            pass  # the (empty) GET body; the next receive waits for a disconnect
        return True
    return False
