"""The `Simulator`: routing, tokens, usage accounting and fault injection around the endpoints."""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qsl

import anyio
import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._errors import (
    APP_REQUEST_LIMIT,
    APPSECRET_PROOF_REQUIRED,
    JSON,
    NO_PERMISSION,
    PAGE_REQUEST_LIMIT,
    RATE_LIMIT_613,
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
from ._insights import insights_body, paging_urls, parse_insights_query, requested_metrics
from ._metrics import (
    METRICS,
    MIN_FOLLOWERS_FOR_FOLLOWER_COUNT,
    day_end,
    full_day_value,
    stable_hash,
)
from ._model import Fault, SimAccount, SimRequest

_VERSION = re.compile(r"v\d+\.\d+")

# Faults whose answer is a sample body as is: kind -> (sample, HTTP status). Throttles come as
# HTTP 400, not 429 (GRAPH_API §3; the code 17 and 613 sources say 400); code 2 came with 500.
_SAMPLE_FAULTS: dict[str, tuple[JSON, int]] = {
    "throttle": (APP_REQUEST_LIMIT, 400),
    "user_throttle": (USER_REQUEST_LIMIT, 400),
    "page_throttle": (PAGE_REQUEST_LIMIT, 400),
    "rate_limit_613": (RATE_LIMIT_613, 400),
    "transient": (UNEXPECTED_TRANSIENT, 500),
    "logged_out": (USER_LOGGED_OUT, 400),
}
# invented: 80002 is Instagram's throttle code (GRAPH_API §3) but no body was captured
_IG_THROTTLE_MESSAGE = (
    "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again."
)
# invented: what a proxy in front of Graph answers; Meta's edge sends HTML, not JSON, for a 502
_BAD_GATEWAY_HTML = (
    "<html><head><title>502 Bad Gateway</title></head>"
    "<body><center><h1>502 Bad Gateway</h1></center></body></html>"
)
# A throttle fault reports the app at its limit (header_x_app_usage_*.json shape).
_APP_USAGE_AT_LIMIT = usage_header({"call_count": 100, "total_cputime": 25, "total_time": 25})


def page_id_of(account_id: str) -> str:
    """The Facebook Page linked to an IG account: a stable 15-digit id, like the live capture's."""
    return str(100_000_000_000_000 + stable_hash("page", account_id) % 900_000_000_000_000)


class Simulator:
    """A Graph API insights endpoint in a box; see the package docstring."""

    def __init__(
        self,
        accounts: Sequence[SimAccount] = (),
        *,
        now: Callable[[], datetime] | None = None,
        latency: float = 0.0,
        strict_tokens: bool = False,
        tokens: Mapping[str, str] | None = None,
        app_secret: str | None = None,
        call_limit: int | None = None,
        usage_window: float = 3600.0,
    ) -> None:
        self.accounts: dict[str, SimAccount] = {a.account_id: a for a in accounts}
        self.faults: list[Fault] = []
        self.requests: list[SimRequest] = []
        self.revision = 0
        self.latency = latency
        self.strict_tokens = strict_tokens
        self.tokens: dict[str, str] = dict(tokens or {})
        self.app_secret = app_secret
        self.call_limit = call_limit  # calls per account per usage_window; None never throttles
        self.usage_window = usage_window  # seconds
        self._now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self._expired: dict[str, datetime] = {}
        self._calls: dict[str, deque[datetime]] = {}
        self.app: ASGIApp = _RecordingApp(self._build_routes(), self)

    # -- what tests use ---------------------------------------------------------------------

    def transport(self) -> httpx.ASGITransport:
        """An in-process transport for `httpx.AsyncClient(transport=...)`. httpx does not
        enforce timeouts on it, so a `timeout` fault simply holds the answer for its delay."""
        return httpx.ASGITransport(app=self.app)

    def daily_value(self, account_id: str, metric: str, day: date) -> int | None:
        """What a one-day request serves for that account-local day (None: no data).

        Availability (empty account, too few followers, denied metric, a future day, today's
        follower_count) is honoured; request limits such as the lookback are not, because they
        make the request fail rather than serve nothing.
        """
        if metric not in METRICS:
            msg = f"metric {metric!r} is not simulated; known: {sorted(METRICS)}"
            raise ValueError(msg)
        return self._served_value(self.accounts[account_id], metric, day, self._now())

    def day_end(self, account_id: str, day: date) -> datetime:
        """The UTC end_time the API reports for that local day."""
        return day_end(self.accounts[account_id].tz, day)

    def expire_token(self, token: str) -> None:
        """From now on `token` answers code 190 subcode 463, in either token mode."""
        self._expired[token] = self._now()

    # -- values -----------------------------------------------------------------------------

    def _served_value(
        self, account: SimAccount, metric: str, day: date, now: datetime
    ) -> int | None:
        if account.empty or metric in account.denied_metrics:
            return None
        if metric == "follower_count" and account.followers < MIN_FOLLOWERS_FOR_FOLLOWER_COUNT:
            return None
        start, end = day_end(account.tz, day - timedelta(days=1)), day_end(account.tz, day)
        if start > now:
            return None  # the day has not begun: no data yet
        full = full_day_value(account.account_id, account.followers, metric, day, self.revision)
        if end <= now:
            return full
        if metric == "follower_count":
            return None  # "excluding the current day" (error_100_follower_count_last_30_days)
        # The current day is served so far: its end_time is ahead of now (GRAPH_API §2).
        second = timedelta(seconds=1)  # integer arithmetic: the same partial on every platform
        return full * ((now - start) // second) // ((end - start) // second)

    # -- routing ----------------------------------------------------------------------------

    def _build_routes(self) -> Starlette:
        routes = [
            Route("/{version}/{node}/insights", self._insights, methods=["GET"]),
            # Token endpoints (oauth/access_token, refresh_access_token, debug_token) and batch
            # (POST /) slot in here; they share _authenticate, _take_fault and _count_call.
        ]
        return Starlette(
            routes=routes, exception_handlers={404: self._not_found, 405: self._wrong_method}
        )

    async def _insights(self, request: Request) -> Response:
        version, account_id = request.path_params["version"], request.path_params["node"]
        if not _VERSION.fullmatch(version) or _is_unknown_alias(account_id):
            return _unknown_path(request.url.path)
        params = dict(request.query_params)
        try:
            fault = self._take_fault(account_id, requested_metrics(params))
            if fault is not None and fault.kind == "timeout":
                if await _client_left_while_held(request, fault.delay):
                    # nginx's "client closed request": nobody reads it, but sim.requests shows it
                    return Response(status_code=499)
            elif fault is not None:
                return self._fault_response(fault, account_id)
            token = self._authenticate(request, params, account_id)
            account = self.accounts.get(account_id)
            if account is None:
                raise GraphReject(unsupported_request("GET", account_id))
            usage = self._count_call(account_id)
            try:
                now = self._now()
                query = parse_insights_query(params, now)
                if any(m in account.denied_metrics for m in query.metrics):
                    raise GraphReject(from_sample(NO_PERMISSION))  # one denied metric fails all
            except GraphReject as reject:
                reject.headers.update(usage)
                raise
            base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
            body = insights_body(
                account,
                query,
                lambda metric, day: self._served_value(account, metric, day, now),
                lambda: paging_urls(base, params, token, query.since, query.until),
            )
            return JSONResponse(body, headers=usage)
        except GraphReject as reject:
            return reject.response()

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return _unknown_path(request.url.path)

    async def _wrong_method(self, request: Request, exc: Exception) -> Response:
        # Graph answers a method an edge lacks as the 100/33 of the issue4028 sample, HTTP 400.
        node = request.path_params.get("node") or request.url.path
        return GraphReject(unsupported_request(request.method, node)).response()

    # -- the checks every Graph call goes through --------------------------------------------

    def _take_fault(self, account_id: str, metrics: tuple[str, ...]) -> Fault | None:
        for fault in self.faults:
            if fault.times <= 0:
                continue
            if fault.metric is not None and fault.metric not in metrics:
                continue
            if fault.account_id is not None and fault.account_id != account_id:
                continue
            fault.times -= 1
            return fault
        return None

    def _fault_response(self, fault: Fault, account_id: str) -> Response:
        if fault.kind in _SAMPLE_FAULTS:
            sample, status = _SAMPLE_FAULTS[fault.kind]
            headers = {"x-app-usage": _APP_USAGE_AT_LIMIT} if fault.kind == "throttle" else {}
            return JSONResponse(from_sample(sample), status_code=status, headers=headers)
        if fault.kind == "throttle_ig":
            ids = (page_id_of(account_id), account_id)
            header = business_usage_header(ids, 100, fault.regain_minutes)
            return JSONResponse(
                graph_error(80002, _IG_THROTTLE_MESSAGE),
                status_code=400,
                headers={"x-business-use-case-usage": header},
            )
        if fault.kind == "server_error":
            # invented: code 1 has no sample; wording is Graph's generic unknown error
            body = graph_error(1, "An unknown error has occurred.", is_transient=True)
            return JSONResponse(body, status_code=500)
        if fault.kind == "bad_gateway":
            return HTMLResponse(_BAD_GATEWAY_HTML, status_code=502)
        if fault.kind == "expired_token":
            now = self._now()
            return JSONResponse(session_expired(now - timedelta(hours=1), now), status_code=400)
        if fault.kind == "object_missing":
            return GraphReject(unsupported_request("GET", account_id)).response()
        msg = f"fault kind {fault.kind!r} has no answer"  # "timeout" is handled by the caller
        raise AssertionError(msg)

    def _authenticate(self, request: Request, params: Mapping[str, str], account_id: str) -> str:
        """The caller's token, or the error Graph answers instead (GRAPH_API §4)."""
        token = _token_of(request, params)
        if token is None:
            # invented envelope, real message and code (Graph's answer to a call with no token)
            message = "An access token is required to request this resource."
            raise GraphReject(graph_error(104, message))
        if token in self._expired:
            raise GraphReject(session_expired(self._expired[token], self._now()))
        if self.strict_tokens and self.tokens.get(token) != account_id:
            # invented: no sample; Graph's wording for a token it cannot parse, no subcode
            message = "Invalid OAuth access token - Cannot parse access token"
            raise GraphReject(graph_error(190, message))
        if self.app_secret is not None:
            expected = hmac.new(
                self.app_secret.encode(), token.encode(), hashlib.sha256
            ).hexdigest()
            if not hmac.compare_digest(params.get("appsecret_proof", ""), expected):
                raise GraphReject(from_sample(APPSECRET_PROOF_REQUIRED))
        return token

    def _count_call(self, account_id: str) -> dict[str, str]:
        """Count the call in the rolling window; the usage headers it earns, or 80002 at 100 %.

        Without a limit no header is sent: absent is not 0 % (GRAPH_API §3).
        """
        if self.call_limit is None:
            return {}
        now, window = self._now(), timedelta(seconds=self.usage_window)
        calls = self._calls.setdefault(account_id, deque())
        while calls and calls[0] <= now - window:
            calls.popleft()
        ids = (page_id_of(account_id), account_id)
        if len(calls) >= self.call_limit:
            wait = (calls[0] + window - now).total_seconds()
            header = business_usage_header(ids, 100, max(1, math.ceil(wait / 60)))
            raise GraphReject(
                graph_error(80002, _IG_THROTTLE_MESSAGE),
                headers={"x-business-use-case-usage": header},
            )
        calls.append(now)
        percent = min(100, len(calls) * 100 // self.call_limit)
        return {"x-business-use-case-usage": business_usage_header(ids, percent, 0)}


async def _client_left_while_held(request: Request, delay: float) -> bool:
    """Hold for `delay` seconds, ending early if the client hangs up (its timeout fired), so
    a held request does not outlive its caller or hold up the server's shutdown."""
    with anyio.move_on_after(delay):
        while (await request.receive())["type"] != "http.disconnect":
            pass  # the (empty) GET body; the next receive waits for a disconnect
        return True
    return False


def _token_of(request: Request, params: Mapping[str, str]) -> str | None:
    """`Authorization: Bearer|OAuth <token>` or the access_token parameter; both are real."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return params.get("access_token") or None


def _is_unknown_alias(node: str) -> bool:
    """Graph ids are numeric; `me` is the one alias it resolves (to the token's user)."""
    return not node.isdigit() and node != "me"


def _unknown_path(path: str) -> Response:
    # invented bodies (no sample), in Graph's wording for an unknown alias and unknown edge
    segments = [s for s in path.split("/") if s]
    if segments and _VERSION.fullmatch(segments[0]):
        segments = segments[1:]
    if segments and _is_unknown_alias(segments[0]):
        message = f"(#803) Some of the aliases you requested do not exist: {segments[0]}"
        return JSONResponse(graph_error(803, message), status_code=404)
    if len(segments) == 1:
        return GraphReject(unsupported_request("GET", segments[0])).response()
    rest = "/".join(segments[1:])
    return JSONResponse(graph_error(2500, f"Unknown path components: /{rest}"), status_code=400)


class _RecordingApp:
    """Records every request into `sim.requests` and applies the configured latency."""

    def __init__(self, app: ASGIApp, sim: Simulator) -> None:
        self._app = app
        self._sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        record = SimRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        )
        self._sim.requests.append(record)

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        if self._sim.latency > 0:
            await anyio.sleep(self._sim.latency)
        await self._app(scope, receive, send_and_record)
