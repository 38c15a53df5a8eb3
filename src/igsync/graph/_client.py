"""The async Graph API client: insights and token calls, through one retry policy."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import httpx
import stamina
from pydantic import SecretStr

from igsync.errors import ErrorKind, GraphError
from igsync.graph._errors import OBJECT_MISSING_SUBCODE, error_from_response, usage_percent
from igsync.graph._login import LoginApi, appsecret_proof
from igsync.graph._parse import MetricValues, parse_insights
from igsync.models import MetricType, TokenKind
from igsync.redact import register_secret

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Bounded retries with capped exponential backoff and jitter (stamina's defaults shape)."""

    attempts: int = 5
    wait_initial: float = 1.0
    wait_max: float = 30.0
    wait_jitter: float = 1.0
    #: total time budget for one request, retries included
    timeout: float = 180.0
    #: a regain-access estimate longer than this fails fast instead of blocking a cron run
    max_regain_wait: float = 300.0
    #: usage (percent of a quota) from which requests slow down (GRAPH_API.md §3: pace before
    #: 100%, from ~80-90%), and the pause before each request at 100%
    pace_from: float = 80.0
    pace_max: float = 30.0

    def pace(self, usage: float | None) -> float:
        """Seconds to pause before the next request at this usage; 0 below `pace_from`.

        Grows with the square of how far past `pace_from` the usage is: barely a pause at 81%,
        a quarter of `pace_max` halfway to 100%, all of it at 100%.
        """
        if usage is None or usage < self.pace_from:
            return 0.0
        share = min(1.0, (usage - self.pace_from) / max(1e-9, 100.0 - self.pace_from))
        return self.pace_max * share**2


@dataclass(frozen=True)
class TokenGrant:
    """A token Meta just issued; `expires_at` is None when Meta left out `expires_in`."""

    access_token: SecretStr
    expires_at: datetime | None


@dataclass(frozen=True)
class TokenDebug:
    """What `debug_token` says of a token (§4)."""

    is_valid: bool
    #: None: never expires (Meta's `expires_at: 0`) or not said
    expires_at: datetime | None
    #: when Meta issued the token (None: not said, as for an invalid token)
    issued_at: datetime | None
    #: data access can end before the token does
    data_access_expires_at: datetime | None
    scopes: list[str]
    error: str | None


def _should_retry(policy: RetryPolicy) -> Callable[[Exception], bool | float]:
    """stamina backoff hook: False = give up, True = default backoff, float = wait that long."""

    def hook(exc: Exception) -> bool | float:
        if not isinstance(exc, GraphError) or exc.kind not in (
            ErrorKind.THROTTLED,
            ErrorKind.TRANSIENT,
        ):
            return False
        if exc.retry_after:
            # Honour Meta's estimate, unless it is longer than a cron run should block.
            return exc.retry_after if exc.retry_after <= policy.max_regain_wait else False
        return True

    return hook


def _unix(value: Any) -> datetime | None:
    if isinstance(value, int) and value > 0:
        return datetime.fromtimestamp(value, UTC)
    return None


def _grant(body: Any, now: datetime) -> TokenGrant:
    token = body.get("access_token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise GraphError(
            "the token endpoint answered without an access_token", kind=ErrorKind.INVALID
        )
    register_secret(token)
    expires_in = body.get("expires_in")
    expires_at = now + timedelta(seconds=expires_in) if isinstance(expires_in, int) else None
    return TokenGrant(SecretStr(token), expires_at)


class GraphClient:
    """One async HTTP client for many accounts; each call names its own token and its kind.

    `base_url` serves Facebook-Login tokens and the app's token calls, `instagram_url`
    Instagram-Login tokens (`LoginApi`). `app_secret` (IG_APP_SECRET) keys appsecret_proof on
    Facebook-Login calls, `instagram_app_secret` (IG_INSTAGRAM_APP_SECRET) on Instagram-Login
    ones: the two apps have different secrets.
    """

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        instagram_url: str = "https://graph.instagram.com",
        app_secret: str | None = None,
        instagram_app_secret: str | None = None,
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
        self._http = httpx.AsyncClient(
            timeout=timeout, transport=transport, headers={"user-agent": "igsync"}
        )
        #: worst usage figure in the last successful answer (None: not reported), for pacing
        self.last_usage: float | None = None
        #: seconds spent pacing so far (stamina's test mode counts them without waiting)
        self.paced_s = 0.0

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

    async def get_insights(
        self,
        account_id: str,
        token: str,
        *,
        kind: TokenKind = "facebook_login",
        metrics: Sequence[str],
        metric_type: MetricType,
        since: datetime,
        until: datetime,
        period: str = "day",
    ) -> list[MetricValues]:
        """`GET /{account}/insights` for metrics of one type over (since, until], on the host
        of the token's `kind` (GRAPH_API.md §7)."""
        api = self._apis[kind]
        params = {
            "metric": ",".join(metrics),
            "period": period,
            # §1: always explicit; some metrics fail or silently return [] without it.
            "metric_type": metric_type,
            "since": str(int(since.timestamp())),
            "until": str(int(until.timestamp())),
            **api.proof(token),
        }
        # DESIGN §7: insights calls carry the token in a header, never in the URL.
        body = await self._get(
            api.url(f"{account_id}/insights"),
            params,
            headers={"authorization": f"Bearer {token}"},
        )
        return parse_insights(body)

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
        return _grant(body, now)

    async def refresh_instagram_token(self, token: str) -> TokenGrant:
        """Instagram Login: +60 days; Meta accepts it only for tokens >= 24 h old (§4).

        Unversioned, on the Instagram host, as Meta documents it; the proof (with the Instagram
        app secret) is of the token being refreshed, the access_token this call carries.
        """
        now = datetime.now(UTC)
        api = self._apis["instagram_login"]
        params = {"grant_type": "ig_refresh_token", "access_token": token, **api.proof(token)}
        body = await self._get(api.url("refresh_access_token", versioned=False), params)
        return _grant(body, now)

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
            expires_at=_unix(data.get("expires_at")),
            issued_at=_unix(data.get("issued_at")),
            data_access_expires_at=_unix(data.get("data_access_expires_at")),
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
        policy = self._retry
        path = httpx.URL(url).path
        async for attempt in stamina.retry_context(
            on=_should_retry(policy),
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                await self._pace()
                response = await self._send(url, path, params, headers)
                if response.is_success:
                    # Only answers that went through set the pace: after a refusal, the
                    # backoff (or Meta's regain estimate) already decides the wait.
                    self.last_usage = usage_percent(response.headers)
                    try:
                        return response.json()
                    except ValueError:
                        raise GraphError(
                            "the Graph API answered with a body that is not JSON",
                            kind=ErrorKind.TRANSIENT,
                            http_status=response.status_code,
                        ) from None
                error = error_from_response(response)
                if error.subcode == OBJECT_MISSING_SUBCODE and attempt.num > 1:
                    error.kind = ErrorKind.INVALID  # §3: retry once, then fail that item
                log.debug("graph error on %s (attempt %d): %s", path, attempt.num, error)
                raise error
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _pace(self) -> None:
        """Slow down while Meta reports a quota near its end, before it starts refusing."""
        wait = self._retry.pace(self.last_usage)
        if wait <= 0:
            return
        log.info("Graph API usage at %.0f%% of a quota: pausing %.1f s", self.last_usage, wait)
        self.paced_s += wait
        if not stamina.is_testing():
            await asyncio.sleep(wait)

    async def _send(
        self,
        url: str,
        path: str,
        params: Mapping[str, str],
        headers: Mapping[str, str] | None,
    ) -> httpx.Response:
        try:
            return await self._http.get(url, params=params, headers=headers)
        except httpx.TimeoutException:
            raise GraphError(
                f"timed out waiting for the Graph API ({path})", kind=ErrorKind.TRANSIENT
            ) from None
        except httpx.TransportError as exc:
            # httpx messages can carry the URL and its query string: keep only the class name.
            raise GraphError(
                f"could not reach the Graph API ({type(exc).__name__} on {path})",
                kind=ErrorKind.TRANSIENT,
            ) from None
