"""The `Simulator`: routing, tokens, usage accounting and fault injection around the endpoints."""

from __future__ import annotations

import hashlib
import hmac
import math
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from time import monotonic as time_now
from types import MappingProxyType

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Scope

from ._asgi import HostRouter, RecordingApp
from ._batch import BatchEndpoint
from ._edges import MediaEndpoints
from ._errors import (
    APPSECRET_PROOF_REQUIRED,
    CANNOT_PARSE_TOKEN,
    NO_PERMISSION,
    TOKEN_REQUIRED,
    GraphReject,
    business_usage_header,
    from_sample,
    graph_error,
    unsupported_request,
)
from ._faults import (
    IG_THROTTLE_MESSAGE,
    client_left_while_held,
    fault_response,
    page_id_of,
    take_fault,
)
from ._insights import insights_body, paging_urls, parse_insights_query, requested_metrics
from ._metrics import (
    METRICS,
    MIN_FOLLOWERS_FOR_FOLLOWER_COUNT,
    day_end,
    full_day_value,
)
from ._model import (
    HOST_KINDS,
    Endpoint,
    Fault,
    Host,
    SimAccount,
    SimMedia,
    SimRequest,
    TokenInfo,
    TokenKind,
)
from ._oauth import TokenEndpoints
from ._pages import PagesEndpoint, SimPage
from ._posts import media_timeline, parse_media_id
from ._routing import VERSION, is_unknown_alias, token_of, unknown_path
from ._stories import live_stories
from ._tokens import DATA_ACCESS, TokenRegistry, kind_of_shape

#: In-process (`Simulator.transport()`), requests to this host reach the Instagram host; any
#: other host name reaches the Facebook one.
INSTAGRAM_HOST = "graph.instagram.com"


class Simulator:
    """A Graph API insights endpoint, and its token endpoints, in a box; see the package
    docstring."""

    def __init__(
        self,
        accounts: Sequence[SimAccount] = (),
        *,
        now: Callable[[], datetime] | None = None,
        latency: float = 0.0,
        strict_tokens: bool = False,
        tokens: Mapping[str, str] | None = None,
        app_id: str = "sim-app-id",
        app_secret: str = "sim-app-secret",  # noqa: S107 - the fake app of a test double
        instagram_app_secret: str = "sim-instagram-app-secret",  # noqa: S107 - likewise
        require_appsecret_proof: bool = False,
        call_limit: int | None = None,
        usage_window: float = 3600.0,
    ) -> None:
        self.accounts: dict[str, SimAccount] = {a.account_id: a for a in accounts}
        self.faults: list[Fault] = []
        self.requests: list[SimRequest] = []
        self.revision = 0
        self.latency = latency
        self.strict_tokens = strict_tokens
        self.app_id = app_id  # client_id of the exchange; APP_ID of debug_token's app token
        self.app_secret = app_secret  # client_secret; also the appsecret_proof HMAC key
        # Business Login for Instagram has its own app secret: the Instagram host's proof key
        self.instagram_app_secret = instagram_app_secret
        # every call that carries an access_token: insights, refresh_access_token (proof of the
        # token refreshed), debug_token (proof of the app token); not oauth/access_token, which
        # carries no access_token and authenticates with client_secret
        self.require_appsecret_proof = require_appsecret_proof
        self.call_limit = call_limit  # calls per account per usage_window; None never throttles
        self.usage_window = usage_window  # seconds
        self._now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        # media are spread back from the first day the simulator saw (UTC), so that they keep
        # their timestamps and ids while its clock moves on (`_posts`)
        self._anchor = datetime.combine(self._now().astimezone(UTC).date(), time(0), tzinfo=UTC)
        self._numbers: dict[str, int] = {}  # account id -> its position, as media ids carry it
        self._media_endpoints = MediaEndpoints(self)
        self._pages = PagesEndpoint(self)
        self._registry = TokenRegistry()
        self._calls: dict[str, deque[datetime]] = {}
        for token, account_id in (tokens or {}).items():
            # given tokens never expire, like the "any token" of permissive mode
            issued_at = self._now()
            info = TokenInfo(
                account_id=account_id,
                kind="facebook_login",
                issued_at=issued_at,
                expires_at=None,
                data_access_expires_at=issued_at + DATA_ACCESS,
            )
            self._registry.register(token, info)
        #: Graph calls (alone or batch items) being answered now, and the most there ever were
        self.in_flight = 0
        self.max_in_flight = 0
        #: time.monotonic() as the first Graph call came in and as the last was answered: a
        #: run's time on the wire, without its client's startup (benchmarks)
        self.first_call_at: float | None = None
        self.last_answer_at: float | None = None
        #: (host, port) pairs served as the Instagram host over loopback (`serve_in_thread`)
        self.instagram_servers: set[tuple[str, int]] = set()
        self.facebook_app: ASGIApp = RecordingApp(self._build_routes("facebook"), self, "facebook")
        self.instagram_app: ASGIApp = RecordingApp(
            self._build_routes("instagram"), self, "instagram"
        )
        #: both hosts behind one ASGI app, told apart by the server each request reached
        self.app: ASGIApp = HostRouter(self)

    # -- what tests use ---------------------------------------------------------------------

    def transport(self) -> httpx.ASGITransport:
        """An in-process transport for `httpx.AsyncClient(transport=...)`: requests to
        `https://graph.instagram.com` reach the Instagram host, any other host the Facebook one.
        httpx does not enforce timeouts on it, so a `timeout` fault simply holds the answer for
        its delay."""
        return httpx.ASGITransport(app=self.app)

    def host_of(self, scope: Scope) -> Host:
        """Which of Meta's hosts a request reached: by the loopback server it came in on, or
        in-process by its host name."""
        server = scope.get("server")
        if server is not None and (
            tuple(server) in self.instagram_servers or server[0] == INSTAGRAM_HOST
        ):
            return "instagram"
        return "facebook"

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

    def media(self, account_id: str) -> tuple[SimMedia, ...]:
        """The account's posts, reels and ads the media edge lists now, newest first."""
        account, now = self.accounts[account_id], self._now()
        media = media_timeline(account, self.account_number(account_id), self._anchor)
        return tuple(m for m in media if m.timestamp <= now)

    def stories(self, account_id: str) -> tuple[SimMedia, ...]:
        """The account's stories the stories edge lists now (the last 24 hours), newest first."""
        number = self.account_number(account_id)
        return tuple(live_stories(self.accounts[account_id], number, self._now()))

    def account_number(self, account_id: str) -> int:
        """The account's position among the accounts, which its media ids carry."""
        if len(self._numbers) != len(self.accounts) or account_id not in self._numbers:
            self._numbers = {a: i for i, a in enumerate(self.accounts)}
        return self._numbers[account_id]

    def account_at(self, number: int) -> SimAccount | None:
        """The account at that position (None: there is none)."""
        accounts = list(self.accounts.values())
        return accounts[number] if number < len(accounts) else None

    @property
    def tokens(self) -> Mapping[str, str | None]:
        """Every registered token and its account (read-only; use `issue_token`)."""
        return MappingProxyType(self._registry.owners())

    def issue_token(
        self,
        account_id: str,
        *,
        kind: TokenKind = "facebook_login",
        issued_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """Register and return a new token of `account_id`. `issued_at` defaults to now;
        `expires_at` None never expires (a 60-day token: `expires_at=now + timedelta(days=60)`).
        """
        if account_id not in self.accounts:
            msg = f"no account {account_id!r}; known: {sorted(self.accounts)}"
            raise ValueError(msg)
        issued_at = issued_at or self._now()
        return self._registry.issue(account_id, kind, issued_at=issued_at, expires_at=expires_at)

    def issue_user_token(
        self,
        pages: Sequence[SimPage],
        *,
        issued_at: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> str:
        """Register and return a Facebook-Login user token that manages `pages`: `GET
        /me/accounts` lists them, and (strict mode too) it reads the insights of every
        Instagram account linked to them, as a user token does (`_pages`)."""
        token = self._registry.issue(
            None, "facebook_login", issued_at=issued_at or self._now(), expires_at=expires_at
        )
        self._pages.granted[token] = tuple(pages)
        return token

    def token_info(self, token: str) -> TokenInfo | None:
        """What the simulator knows of `token` (None: it never issued or was given it)."""
        return self._registry.get(token)

    def expire_token(self, token: str) -> None:
        """From now on `token` answers code 190 subcode 463, in either token mode."""
        self._registry.expire(token, self._now())

    def revoke_token(self, token: str) -> None:
        """The user logged out: from now on `token` answers 190/467, in either token mode."""
        self._registry.revoke(token)

    def enter_calls(self, count: int) -> None:
        if self.first_call_at is None:
            self.first_call_at = time_now()
        self.in_flight += count
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def exit_calls(self, count: int) -> None:
        self.in_flight -= count
        self.last_answer_at = time_now()

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

    def _build_routes(self, host: Host) -> Starlette:
        async def insights(request: Request) -> Response:
            if parse_media_id(request.path_params["node"]) is not None:
                return await self._media_endpoints.insights(request, host)
            return await self._insights(request, host)

        routes = [
            Route("/{version}/{node}/insights", insights, methods=["GET"]),
            *TokenEndpoints(self).routes(host),
            # Meta documents batch requests on graph.facebook.com only (GRAPH_API §5).
            *(BatchEndpoint(self).routes() if host == "facebook" else []),
            *(self._pages.routes() if host == "facebook" else []),  # a Facebook Login edge
            *self._media_endpoints.routes(host),  # last: /{version}/{node} matches much
        ]
        app = Starlette(
            routes=routes, exception_handlers={404: self._not_found, 405: self._wrong_method}
        )
        app.router.redirect_slashes = False  # Graph answers, it never redirects
        return app

    async def _insights(self, request: Request, host: Host) -> Response:
        version, account_id = request.path_params["version"], request.path_params["node"]
        if not VERSION.fullmatch(version) or is_unknown_alias(account_id):
            return unknown_path(request.url.path)
        params = dict(request.query_params)
        answer = await self._faulted(request, "insights", account_id, requested_metrics(params))
        if answer is not None:
            return answer
        try:
            token = self._authenticate(request, params, account_id, host)
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
                now,
            )
            return JSONResponse(body, headers=usage)
        except GraphReject as reject:
            return reject.response()

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return unknown_path(request.url.path)

    async def _wrong_method(self, request: Request, exc: Exception) -> Response:
        # Graph answers a method an edge lacks as the 100/33 of the issue4028 sample, HTTP 400.
        node = request.path_params.get("node") or request.url.path.rstrip("/").rsplit("/", 1)[-1]
        return GraphReject(unsupported_request(request.method, node)).response()

    # -- the checks every Graph call goes through --------------------------------------------

    async def _faulted(
        self,
        request: Request,
        endpoint: Endpoint,
        account_id: str | None,
        metrics: tuple[str, ...] = (),
        *,
        node: str | None = None,
    ) -> Response | None:
        """The answer of the fault this request hits, if any. A `timeout` holds the request,
        then lets it through (None) unless the client left meanwhile. `node` is the object an
        `object_missing` fault names (default: the account of an insights call, else the
        endpoint)."""
        fault = take_fault(self.faults, endpoint, account_id, metrics)
        if fault is None:
            return None
        if fault.kind == "timeout":
            if await client_left_while_held(request, fault.delay):
                # nginx's "client closed request": nobody reads it, but sim.requests shows it
                return Response(status_code=499)
            return None
        if node is None:
            node = account_id if endpoint == "insights" and account_id else endpoint
        return fault_response(
            fault,
            account_id=account_id,
            node=node,
            now=self._now(),
            metrics=metrics,
            app_id=self.app_id,
        )

    def _authenticate(
        self, request: Request, params: Mapping[str, str], account_id: str | None, host: Host
    ) -> str:
        """The caller's token, or the error Graph answers instead (GRAPH_API §4, §7).

        `account_id`: the account the call reads (None: the token's own user, `/me/accounts`);
        strict mode lets a token read only its own account, or one of its Pages' accounts."""
        token = token_of(request, params)
        if token is None:
            raise GraphReject(graph_error(104, TOKEN_REQUIRED))
        info = self._registry.get(token)
        kind = info.kind if info is not None else kind_of_shape(token)
        if kind is not None and kind != HOST_KINDS[host]:
            # Each host refuses the other login's tokens before looking any further.
            raise GraphReject(graph_error(190, CANNOT_PARSE_TOKEN))
        problem = self._registry.problem(token, self._now())  # logged out or expired
        if problem is not None:
            raise GraphReject(problem)
        if self.strict_tokens and (
            info is None
            or (
                account_id is not None
                and info.account_id != account_id
                and account_id not in self._pages.accounts_of(token)
            )
        ):
            raise GraphReject(graph_error(190, CANNOT_PARSE_TOKEN))
        self._check_appsecret_proof(token, params, host)
        return token

    def _check_appsecret_proof(self, token: str, params: Mapping[str, str], host: Host) -> None:
        """When the app requires it, `appsecret_proof` must be the HMAC of the access token
        the call carries (GRAPH_API §4), keyed by the app secret of the host's login (the
        Instagram app's own secret on the Instagram host); a missing or wrong one fails with
        code 100."""
        if not self.require_appsecret_proof:
            return
        key = self.instagram_app_secret if host == "instagram" else self.app_secret
        expected = hmac.new(key.encode(), token.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(params.get("appsecret_proof", ""), expected):
            raise GraphReject(from_sample(APPSECRET_PROOF_REQUIRED))

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
                graph_error(80002, IG_THROTTLE_MESSAGE),
                headers={"x-business-use-case-usage": header},
            )
        calls.append(now)
        percent = min(100, len(calls) * 100 // self.call_limit)
        return {"x-business-use-case-usage": business_usage_header(ids, percent, 0)}
