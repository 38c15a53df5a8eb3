"""Async client for the Graph API insights endpoint: requests, parsing, error taxonomy, retries.

Knows nothing of storage. Facts it relies on are in GRAPH_API.md; section numbers below refer
to it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import httpx
import stamina

from igsync.errors import ErrorKind, GraphError
from igsync.models import MetricType, as_utc
from igsync.redact import redact

log = logging.getLogger(__name__)

# §3: throttling arrives with these codes, often as HTTP 400 rather than 429.
_THROTTLE_CODES = frozenset({4, 17, 32, 613}) | frozenset(range(80001, 80015))
_AUTH_CODES = frozenset({102, 104, 190})
_TRANSIENT_CODES = frozenset({1, 2})
_OBJECT_MISSING_SUBCODE = 33


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


@dataclass(frozen=True)
class Point:
    """One day of a time_series metric."""

    end_time: datetime
    value: int | None
    value_json: Any = None


@dataclass(frozen=True)
class MetricValues:
    """One item of an insights answer: time_series `points`, or a `total` for total_value."""

    name: str
    period: str
    points: list[Point] = field(default_factory=list)
    total: int | None = None
    breakdowns: Any = None


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
    if code == 100 and subcode == _OBJECT_MISSING_SUBCODE:
        # Sometimes a disguised rate limit: retried once, then permanent (see _request).
        return ErrorKind.TRANSIENT
    return ErrorKind.INVALID


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
    figures: list[float] = []
    app = _header_json(headers, "x-app-usage")
    if isinstance(app, dict):
        figures += [float(v) for v in app.values() if isinstance(v, int | float)]
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
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
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
        retry_after=regain_seconds(response.headers),
    )


def _parse_item(item: dict[str, Any]) -> MetricValues:
    name = str(item.get("name", ""))
    period = str(item.get("period", "day"))
    if "total_value" in item:
        total = item["total_value"] or {}
        value = total.get("value")
        return MetricValues(
            name=name,
            period=period,
            total=value if isinstance(value, int) else None,
            breakdowns=total.get("breakdowns"),
        )
    points = []
    for entry in item.get("values") or []:
        if "end_time" not in entry:
            continue  # lifetime values carry no end_time; account insights always do
        # §2: "+0000" offsets need a real ISO parser; fromisoformat takes them on 3.11.
        end_time = as_utc(datetime.fromisoformat(entry["end_time"]))
        value = entry.get("value")
        if isinstance(value, bool) or not isinstance(value, int | None):
            points.append(Point(end_time, None, value))
        else:
            points.append(Point(end_time, value))
    return MetricValues(name=name, period=period, points=points)


def parse_insights(body: Any) -> list[MetricValues]:
    """Parse an insights answer. `{"data": []}` is "no data", not zero (§1)."""
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise GraphError("the Graph API answered without a data list", kind=ErrorKind.TRANSIENT)
    return [_parse_item(item) for item in body["data"] if isinstance(item, dict)]


def appsecret_proof(token: str, app_secret: str) -> str:
    """§4: hex HMAC-SHA256 of the access token keyed by the app secret."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


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


class GraphClient:
    """One async HTTP client for many accounts; each call names its own token."""

    def __init__(
        self,
        *,
        base_url: str,
        version: str,
        app_secret: str | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._version = version
        self._app_secret = app_secret
        self._retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=timeout,
            transport=transport,
            headers={"user-agent": "igsync"},
        )
        #: worst usage figure seen in the last answer, for pacing and -v output
        self.last_usage: float | None = None

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

    async def get_insights(
        self,
        account_id: str,
        token: str,
        *,
        metrics: Sequence[str],
        metric_type: MetricType,
        since: datetime,
        until: datetime,
        period: str = "day",
    ) -> list[MetricValues]:
        """`GET /{account}/insights` for metrics of one type over (since, until]."""
        params = {
            "metric": ",".join(metrics),
            "period": period,
            # §1: always explicit; some metrics fail or silently return [] without it.
            "metric_type": metric_type,
            "since": str(int(since.timestamp())),
            "until": str(int(until.timestamp())),
        }
        body = await self._request(f"/{self._version}/{account_id}/insights", token, params)
        return parse_insights(body)

    async def _request(self, path: str, token: str, params: dict[str, str]) -> Any:
        if self._app_secret:
            params = {**params, "appsecret_proof": appsecret_proof(token, self._app_secret)}
        # §7 of DESIGN: the token goes in the header, never the URL.
        headers = {"authorization": f"Bearer {token}"}
        policy = self._retry
        async for attempt in stamina.retry_context(
            on=_should_retry(policy),
            attempts=policy.attempts,
            timeout=policy.timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
        ):
            with attempt:
                response = await self._send(path, params, headers)
                self.last_usage = usage_percent(response.headers)
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError:
                        raise GraphError(
                            "the Graph API answered with a body that is not JSON",
                            kind=ErrorKind.TRANSIENT,
                            http_status=response.status_code,
                        ) from None
                error = error_from_response(response)
                if error.subcode == _OBJECT_MISSING_SUBCODE and attempt.num > 1:
                    error.kind = ErrorKind.INVALID  # §3: retry once, then fail that item
                log.debug("graph error on %s (attempt %d): %s", path, attempt.num, error)
                raise error
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover

    async def _send(
        self, path: str, params: dict[str, str], headers: dict[str, str]
    ) -> httpx.Response:
        try:
            return await self._http.get(path, params=params, headers=headers)
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
