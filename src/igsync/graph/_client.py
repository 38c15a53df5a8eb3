"""The async Graph API client: insights and token calls, through one retry policy."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime
from time import monotonic
from types import TracebackType
from typing import Any, Self
from urllib.request import getproxies

import httpx
import stamina

from igsync.errors import ErrorKind, GraphError
from igsync.graph._batch import (
    MAX_BATCH,
    Answer,
    Batcher,
    GraphRequest,
    batch_item,
    parse_batch,
)
from igsync.graph._errors import (
    OBJECT_MISSING_SUBCODE,
    app_usage,
    business_usage,
    error_from_answer,
)
from igsync.graph._login import LoginApi, appsecret_proof
from igsync.graph._parse import MetricValues, parse_insights
from igsync.graph._pools import PooledTransport
from igsync.graph._retry import RetryPolicy, should_retry
from igsync.graph._retry_log import retried_call, seconds
from igsync.graph._token_answers import TokenDebug, TokenGrant, grant_of, unix_time
from igsync.models import MetricType, TokenKind

log = logging.getLogger(__name__)

#: calls in a row that each spend their retries (about 17 s with the default RetryPolicy)
#: without a connection, no other call answered meanwhile, after which the Graph API is taken
#: for unreachable: a wrong IGSYNC_GRAPH_URL, a dead network or proxy. Each account would
#: otherwise spend those seconds in turn: 45 minutes for 10,000 accounts at 64 at once.
UNREACHABLE_AFTER = 16
#: how every transport failure's GraphError begins: no connection made, or one lost
UNREACHABLE = "could not reach the Graph API"


class GraphClient:
    """One async HTTP client for many accounts; each call names its own token and its kind.

    `base_url` serves Facebook-Login tokens and the app's token calls, `instagram_url`
    Instagram-Login tokens (`LoginApi`). `app_secret` (IG_APP_SECRET) keys appsecret_proof on
    Facebook-Login calls, `instagram_app_secret` (IG_INSTAGRAM_APP_SECRET) on Instagram-Login
    ones: the two apps have different secrets.

    With `batch`, concurrent Facebook-Login calls share Graph batch requests (`_batch`): with
    app credentials (`app_id` and `app_secret`) calls of every account share one batch under
    the app token; without, each token's calls share batches of their own. Instagram-Login
    calls are always sent alone: Meta documents no batch endpoint on graph.instagram.com.
    At most `max_in_flight` calls (alone or batch items) are in flight at once, over at most
    `connections` pooled, kept-alive connections; a batch leaves with `batch_size` calls (or
    `batch_linger` seconds after its first): `pool_sizes` sizes all three for some accounts.
    """

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        instagram_url: str = "https://graph.instagram.com",
        app_secret: str | None = None,
        instagram_app_secret: str | None = None,
        app_id: str | None = None,
        batch: bool = False,
        batch_linger: float = 0.005,
        batch_size: int = MAX_BATCH,
        max_in_flight: int = 256,
        connections: int = 64,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._apis: dict[TokenKind, LoginApi] = {
            "facebook_login": LoginApi("facebook_login", base_url.rstrip("/"), version, app_secret),
            "instagram_login": LoginApi(
                "instagram_login", instagram_url.rstrip("/"), version, instagram_app_secret
            ),
        }
        self._retry = retry or RetryPolicy()
        # A pool as large as the work: httpx keeps only 20 idle connections by default, so
        # more calls at once would each open (against Meta: a TLS handshake) a new one.
        if transport is None and not getproxies():
            transport = PooledTransport(connections)
        # With HTTPS_PROXY & co. set, httpx's own transport, which honours them (a transport
        # passed in would not), in one pool.
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._http = httpx.AsyncClient(
            timeout=timeout, transport=transport, headers={"user-agent": "igsync"}, limits=limits
        )
        self._batch = batch
        self._linger = batch_linger
        self._batch_size = batch_size
        self._app_token = f"{app_id}|{app_secret}" if app_id and app_secret else None
        self._batchers: dict[str, Batcher] = {}
        self._in_flight = asyncio.Semaphore(max_in_flight)
        #: the app's quota figure (x-app-usage) in the last successful answer (None: not
        #: reported), which paces every call
        self.last_usage: float | None = None
        #: each token's own quota figure (x-business-use-case-usage) while it is high enough
        #: to pace that token's calls: one account near its limit slows only itself, and the
        #: map holds only such tokens, never one entry per account of a run
        self._token_usage: dict[str, float] = {}
        #: seconds spent pacing so far (stamina's test mode counts them without waiting)
        self.paced_s = 0.0
        #: one future per request started and not yet written to its connection
        self._unwritten: set[asyncio.Future[None]] = set()
        #: set by `stop_waiting`: no call waits any more to try again or to pace itself
        self._stopping = asyncio.Event()
        #: calls in a row whose every attempt found no connection to Meta (`_heard`)
        self._unconnected = 0
        #: the last of the `UNREACHABLE_AFTER` calls in a row that never reached Meta, once
        #: there were that many (None: Meta answers); see `unreachable_reason`
        self.unreachable: GraphError | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def api(self, kind: TokenKind) -> LoginApi:
        """Where calls carrying a token of `kind` go, and how they prove the app."""
        return self._apis[kind]

    @property
    def batching(self) -> bool:
        return self._batch

    async def call(self, request: GraphRequest) -> Any:
        """Send one call (alone, or in a batch when batching) under the retry policy; returns
        its parsed JSON body. Raises GraphError, classified the same either way."""
        batched = self._batch and request.kind == "facebook_login"

        async def send() -> Answer:
            if batched:
                return await self._batcher(request).submit(request)
            return await self._alone(request)

        # A batch item's headers speak of its account only; the batch's own answer carries
        # the app's figure (_post_batch).
        path = f"/{request.path}"
        return await self._retrying(path, send, request.token, app_level=not batched)

    async def _alone(self, request: GraphRequest) -> Answer:
        """One call as a plain GET on its kind's host."""
        api = self._apis[request.kind]
        params = {**request.params, **api.proof(request.token)}
        # DESIGN §7: a call sent alone carries the token in a header, never in the URL.
        headers = {"authorization": f"Bearer {request.token}"}
        return await self._send_get(api.url(request.path), params, headers)

    def _batcher(self, request: GraphRequest) -> Batcher:
        top = self._app_token or request.token
        batcher = self._batchers.get(top)
        if batcher is None:
            batcher = self._batchers[top] = Batcher(
                self._post_batch,
                top,
                linger=self._linger,
                size=self._batch_size,
                on_idle=self._forget(top),
            )
        return batcher

    def _forget(self, top: str) -> Callable[[Batcher], None]:
        def forget(batcher: Batcher) -> None:
            if self._batchers.get(top) is batcher:
                del self._batchers[top]

        return forget

    async def _post_batch(self, top: str, requests: Sequence[GraphRequest]) -> list[Answer | None]:
        """One batch round trip; raises GraphError when the batch as a whole is refused.

        A batch of one is sent as the plain GET it stands for: the same answer, without a
        batch's envelope (a token's lone call, when no app token lets accounts share).
        """
        api = self._apis["facebook_login"]
        if len(requests) == 1:
            answer = await self._alone(requests[0])
            if answer.is_success:
                # as in _retrying: a refusal's usage figure (x-app-usage at 100 % on a code 4)
                # must not pace every later call; the backoff already decides its wait
                self.last_usage = app_usage(answer.headers)
            return [answer]
        fields = {
            "batch": json.dumps([batch_item(r, api) for r in requests], separators=(",", ":")),
            "include_headers": "true",
            "access_token": top,
            **api.proof(top),
        }
        # multipart/form-data, as Meta's `curl -F 'batch=[…]'` examples send it: its fields
        # travel as they are, where a urlencoded body percent-encodes the batch's JSON
        # character by character (0.5 ms of CPU a batch of 16, 4x the multipart body).
        form = {name: (None, value) for name, value in fields.items()}
        request = self._http.build_request("POST", api.url(""), files=form)
        # httpx streams a multipart body part by part, a socket write each (17 for a batch);
        # read into one body, it leaves in one write and reaches the server in one segment
        request.read()
        response = await self._round_trip("a batch", request)
        answer = Answer.of(response)
        if not answer.is_success:
            error = _error_of(answer)
            if error.kind == ErrorKind.AUTH and top == self._app_token:
                # The app token was refused, not any account's token: no account may be
                # marked needs_reauth for it.
                error.kind = ErrorKind.INVALID
                error.message = (
                    f"the app token (IG_APP_ID/IG_APP_SECRET) was refused: {error.message}"
                )
            raise error
        self.last_usage = app_usage(response.headers)  # items report their accounts' own
        try:
            return parse_batch(answer.json(), len(requests))
        except ValueError:
            raise GraphError(
                "the Graph API answered a batch with a body that is not JSON",
                kind=ErrorKind.TRANSIENT,
            ) from None

    async def get_insights(
        self,
        account_id: str,
        token: str,
        *,
        kind: TokenKind = "facebook_login",
        metrics: Sequence[str],
        metric_type: MetricType,
        since: datetime | None = None,
        until: datetime | None = None,
        period: str = "day",
        breakdown: str | None = None,
        timeframe: str | None = None,
    ) -> list[MetricValues]:
        """`GET /{account}/insights` for metrics of one type, on the host of the token's `kind`
        (GRAPH_API.md §7).

        Daily metrics take (since, until]; the demographics take a `breakdown` (Meta's
        dimension keys, comma-joined: "age,gender") and a `timeframe` (this_week, this_month)
        instead, and no range (Meta's IG User Insights reference).
        """
        params = {
            "metric": ",".join(metrics),
            "period": period,
            # §1: always explicit; some metrics fail or silently return [] without it.
            "metric_type": metric_type,
        }
        if since is not None:
            params["since"] = str(int(since.timestamp()))
        if until is not None:
            params["until"] = str(int(until.timestamp()))
        if breakdown is not None:
            params["breakdown"] = breakdown
        if timeframe is not None:
            params["timeframe"] = timeframe
        request = GraphRequest(kind, f"{account_id}/insights", params, token)
        return parse_insights(await self.call(request))

    async def exchange_token(self, token: str, *, app_id: str, app_secret: str) -> TokenGrant:
        """Facebook Login: a fresh ~60-day token for a long-lived one (§4, fb_exchange_token)."""
        now = datetime.now(UTC)
        # No appsecret_proof here: this call carries no access_token to prove. It
        # authenticates the app with client_secret itself, and the token being exchanged
        # travels as fb_exchange_token (GRAPH_API.md §4).
        body = await self._get(
            self._apis["facebook_login"].url("oauth/access_token"),
            {
                "grant_type": "fb_exchange_token",
                "client_id": app_id,
                "client_secret": app_secret,
                "fb_exchange_token": token,
            },
        )
        return grant_of(body, now)

    async def refresh_instagram_token(self, token: str) -> TokenGrant:
        """Instagram Login: +60 days; Meta accepts it only for tokens >= 24 h old (§4).

        Unversioned, on the Instagram host, as Meta documents it; the proof (with the Instagram
        app secret) is of the token being refreshed, the access_token this call carries.
        """
        now = datetime.now(UTC)
        api = self._apis["instagram_login"]
        params = {"grant_type": "ig_refresh_token", "access_token": token, **api.proof(token)}
        body = await self._get(api.url("refresh_access_token", versioned=False), params)
        return grant_of(body, now)

    async def debug_token(self, token: str, *, app_id: str, app_secret: str) -> TokenDebug:
        """Ask Meta whether a token is valid and when it expires, with the app token.

        The access_token sent is the app token `APP_ID|APP_SECRET`, so appsecret_proof (for an
        app that requires it on every call, §4) is the proof of that app token, not of the
        token being inspected. The secret is at hand here, so the proof is always sent.
        """
        app_token = f"{app_id}|{app_secret}"
        params = {
            "input_token": token,
            "access_token": app_token,
            "appsecret_proof": appsecret_proof(app_token, app_secret),
        }
        # Facebook host only: graph.instagram.com has no debug_token, and the Facebook host
        # cannot parse an Instagram-Login input_token (docs/instagram-login.md).
        body = await self._get(self._apis["facebook_login"].url("debug_token"), params)
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            raise GraphError("debug_token answered without data", kind=ErrorKind.INVALID)
        error = data.get("error")
        return TokenDebug(
            is_valid=bool(data.get("is_valid")),
            expires_at=unix_time(data.get("expires_at")),
            issued_at=unix_time(data.get("issued_at")),
            data_access_expires_at=unix_time(data.get("data_access_expires_at")),
            scopes=[str(s) for s in data.get("scopes") or []],
            error=str(error.get("message")) if isinstance(error, dict) else None,
        )

    async def _get(
        self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None
    ) -> Any:
        """GET with retries on throttled and transient errors; returns the parsed JSON body.

        Token endpoints take secrets as query parameters, as Meta documents them: no URL ever
        reaches an error or a log line from here.
        """
        token = params.get("access_token") or params.get("fb_exchange_token") or ""
        return await self._retrying(
            httpx.URL(url).path, lambda: self._send_get(url, params, headers), token
        )

    async def _retrying(
        self,
        path: str,
        send: Callable[[], Awaitable[Answer]],
        token: str,
        *,
        app_level: bool = True,
    ) -> Any:
        """`send` under the retry policy (throttled and transient errors, §3), paced by the
        usage Meta reports for the app and for `token`; the parsed JSON body of the first
        answer that succeeds."""
        policy = self._retry
        with retried_call(path, policy.attempts):
            try:
                body = await self._attempts(path, send, token, app_level=app_level)
            except GraphError as error:
                self._heard(error)
                raise
        self._unconnected = 0
        return body

    def stop_waiting(self) -> None:
        """End every wait of this client's calls now and from now on: a call waiting to try
        again (a backoff, Meta's time to regain access) fails at once with its last error,
        marked "not retried: the run was stopped", and none pauses for pacing. For a run told
        to stop (SIGTERM): its accounts in flight finish within a round trip, not minutes."""
        self._stopping.set()

    def _heard(self, error: GraphError) -> None:
        """Count the calls in a row that ended without ever reaching Meta; any answer, even
        a refusal, ends the count. Once `stop_waiting` was called no call spends its retries,
        so a failure proves nothing of the network: none is counted."""
        if self._stopping.is_set():
            return
        if not error.unreachable:
            self._unconnected = 0
            return
        self._unconnected += 1
        if self._unconnected >= UNREACHABLE_AFTER and self.unreachable is None:
            self.unreachable = error
            log.error(
                "the Graph API could not be reached by %d calls in a row: %s",
                self._unconnected,
                error,
            )

    @property
    def unreachable_reason(self) -> str | None:
        """Why this client takes the Graph API for unreachable, as one line (None: it does
        not): `UNREACHABLE_AFTER` calls in a row each spent their retries without a
        connection. It stays so for the client's life: sync_all starts no more accounts."""
        if self.unreachable is None:
            return None
        last = str(self.unreachable).removeprefix(UNREACHABLE).strip(" ()")
        return (
            f"the Graph API could not be reached: {UNREACHABLE_AFTER} calls in a row found no"
            f" connection, each after its retries (the last: {last}); check the network, any"
            " proxy (HTTPS_PROXY) and IGSYNC_GRAPH_URL / IGSYNC_INSTAGRAM_URL, or run"
            " `igsync doctor`"
        )

    async def _attempts(
        self,
        path: str,
        send: Callable[[], Awaitable[Answer]],
        token: str,
        *,
        app_level: bool,
    ) -> Any:
        """The first attempt on its own; after a failure, stamina's retry loop from there.

        Nearly every call succeeds at once, and stamina builds a tenacity state machine per
        call (about 8 % of sync-all's CPU in py-spy). So the first attempt runs bare; its
        error is then replayed as stamina's first attempt, without a second request, and
        stamina decides the rest exactly as if it had run the call from the start: whether
        to retry (`should_retry`), the backoff, the on-retry hooks and their numbering, and
        the time budget, which is what the first attempt left of `RetryPolicy.timeout`.
        """
        started = monotonic()
        try:
            return await self._attempt(path, send, token, app_level=app_level, num=1)
        except Exception as error:  # stamina's `on` hook decides what is retried, as before
            first = error
        policy = self._retry
        left = policy.timeout - (monotonic() - started)
        if left <= 0 or self._stopping.is_set():
            # stamina would stop here too: the budget went on the first attempt; or the run
            # was told to stop, and no call waits to try again
            raise first
        last = [first]

        async def retried() -> Any:
            async for attempt in stamina.retry_context(
                on=should_retry(policy),
                attempts=policy.attempts,
                timeout=left,
                wait_initial=policy.wait_initial,
                wait_max=policy.wait_max,
                wait_jitter=policy.wait_jitter,
            ):
                with attempt:
                    if attempt.num == 1:
                        raise first
                    try:
                        return await self._attempt(
                            path, send, token, app_level=app_level, num=attempt.num
                        )
                    except Exception as error:
                        last[0] = error
                        raise
            raise AssertionError("stamina re-raises the last error")  # pragma: no cover

        retrying = asyncio.ensure_future(retried())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({retrying, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not retrying.done():
                retrying.cancel()  # told to stop (below), or this call was cancelled
        if retrying.done() and not retrying.cancelled():
            return retrying.result()
        with suppress(asyncio.CancelledError):
            await retrying
        if isinstance(last[0], GraphError):
            raise last[0].clone(f"{last[0].message} (not retried: the run was stopped)")
        raise last[0]

    async def _attempt(
        self,
        path: str,
        send: Callable[[], Awaitable[Answer]],
        token: str,
        *,
        app_level: bool,
        num: int,
    ) -> Any:
        """Attempt `num` (1-based) of a call: paced, bounded in flight, its answer parsed;
        raises its GraphError."""
        await self._pace(token)
        async with self._in_flight:
            answer = await send()
        if answer.is_success:
            # Only answers that went through set the pace: after a refusal, the
            # backoff (or Meta's regain estimate) already decides the wait.
            self._note_usage(token, answer.headers, app_level=app_level)
            try:
                return answer.json()
            except ValueError:
                raise GraphError(
                    "the Graph API answered with a body that is not JSON",
                    kind=ErrorKind.TRANSIENT,
                    http_status=answer.status,
                ) from None
        error = _error_of(answer)
        if error.subcode == OBJECT_MISSING_SUBCODE and num > 1:
            error.kind = ErrorKind.INVALID  # §3: retry once, then fail that item
        log.debug("graph error on %s (attempt %d): %s", path, num, error)
        raise error

    def _note_usage(self, token: str, headers: httpx.Headers, *, app_level: bool) -> None:
        if app_level:
            self.last_usage = app_usage(headers)
        own = business_usage(headers)
        if own is not None and self._retry.pace(own) > 0:
            self._token_usage[token] = own
        else:
            self._token_usage.pop(token, None)

    async def _pace(self, token: str) -> None:
        """Slow down while Meta reports a quota near its end, before it starts refusing: the
        app's quota for every call, a token's own for its calls only."""
        figures = [u for u in (self.last_usage, self._token_usage.get(token)) if u is not None]
        usage = max(figures, default=None)
        wait = self._retry.pace(usage)
        if wait <= 0:
            return
        # A long pause is a throttle wait an operator should hear of without -v.
        log.log(
            logging.WARNING if wait >= 5 else logging.INFO,
            "Graph API usage at %.0f%% of a quota: pausing %s before the next call",
            usage,
            seconds(wait),
            extra={"event": "pacing", "usage_percent": usage, "wait_s": round(wait, 2)},
        )
        self.paced_s += wait
        if not stamina.is_testing():
            # a run told to stop does not wait out the pause (`stop_waiting`)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    async def _send_get(
        self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None
    ) -> Answer:
        request = self._http.build_request("GET", url, params=params, headers=headers)
        return Answer.of(await self._round_trip(request.url.path, request))

    async def requests_written(self) -> None:
        """Returns once the requests started so far (batches flushed in this loop turn
        included) are written to their connections, or have failed.

        sync_all's writers wait for it: a SQLite write holds the event loop for milliseconds,
        and a batch it delays delays every call in it (benchmarks/sync_all.py: 3,000 accounts
        4 % faster). The moment a request is written is httpcore's `trace` extension's
        `http11.send_request_body.complete` (https://www.python-httpx.org/advanced/extensions/).
        """
        await asyncio.sleep(0)  # a batch flushed in this loop turn starts its send in the next
        if self._unwritten:
            await asyncio.wait(list(self._unwritten))

    async def _round_trip(self, what: str, request: httpx.Request) -> httpx.Response:
        """One HTTP round trip; a timeout or transport failure is a transient GraphError."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wrote() -> None:
            if not written.done():
                written.set_result(None)
                self._unwritten.discard(written)

        async def trace(event: str, info: Mapping[str, object]) -> None:
            if event.endswith(".send_request_body.complete"):
                wrote()

        request.extensions["trace"] = trace
        self._unwritten.add(written)
        try:
            return await self._http.send(request)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.ProxyError) as exc:
            # where it tried: scheme, host and port only (a URL's userinfo or query may hold
            # a secret)
            url = request.url
            where = f"{url.scheme}://{url.host}" + (f":{url.port}" if url.port else "")
            raise GraphError(
                f"{UNREACHABLE} ({type(exc).__name__} at {where} on {what})",
                kind=ErrorKind.TRANSIENT,
                unreachable=True,
            ) from None
        except httpx.TimeoutException:
            raise GraphError(
                f"timed out waiting for the Graph API ({what})", kind=ErrorKind.TRANSIENT
            ) from None
        except httpx.TransportError as exc:
            # httpx messages can carry the URL and its query string: keep only the class name.
            raise GraphError(
                f"{UNREACHABLE} ({type(exc).__name__} on {what})",
                kind=ErrorKind.TRANSIENT,
            ) from None
        finally:
            wrote()  # a failed send, or a transport without httpcore's trace (tests' mocks)


def _error_of(answer: Answer) -> GraphError:
    try:
        body = answer.json()
    except ValueError:
        body = None
    return error_from_answer(answer.status, answer.headers, body)
