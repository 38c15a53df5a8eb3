"""The token endpoints (GRAPH_API §4): exchange, Instagram refresh, and debug_token.

    GET /{version}/oauth/access_token?grant_type=fb_exchange_token&client_id&client_secret
        &fb_exchange_token          Facebook Login: a new ~60-day token; the old one stays valid
    GET /refresh_access_token?grant_type=ig_refresh_token&access_token
                                    Instagram Login (the Instagram host only): the same, for a
                                    token at least 24 h old and not expired
    GET /{version}/debug_token?input_token&access_token=APP_ID|APP_SECRET
                                    what Meta knows of a token; an invalid one is HTTP 200 too,
                                    and an Instagram-Login one cannot be parsed here

With `require_appsecret_proof`, the calls that carry an access_token need its proof:
refresh_access_token (of the token refreshed) and debug_token (of the app token). The exchange
carries none (the app authenticates with client_secret), so it needs none.

Each path is also served without (or with) a version. Success bodies follow
oauth_access_token_fb_exchange_token_*.json, ig_refresh_access_token_response_meta_docs.json
and debug_token_response_pyfacebook.json; the errors and their sources are in `_errors`.
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._errors import (
    APP_TOKEN_REQUIRED,
    CANNOT_PARSE_TOKEN,
    EXCHANGE_TOKEN_NOT_SPECIFIED,
    IG_ERROR_TYPE,
    INVALID_ACCESS_TOKEN,
    INVALID_APPLICATION_ID,
    INVALID_CLIENT_SECRET,
    INVALID_TOKEN_SIGNATURE,
    JSON,
    MISSING_CLIENT_ID,
    MISSING_REDIRECT_URI,
    PARAMETER_REQUIRED,
    REFRESH_GRANT_TYPE,
    REFRESH_TOO_EARLY,
    TOKEN_REQUIRED,
    GraphReject,
    graph_error,
)
from ._model import Endpoint, Host, TokenInfo, TokenKind
from ._routing import token_of, unknown_version
from ._tokens import LONG_LIVED, user_id_of

if TYPE_CHECKING:
    from ._app import Simulator

REFRESH_MIN_AGE = timedelta(hours=24)  # GRAPH_API §4
APPLICATION = "igsync simulator"  # debug_token's `application`: the app's name
# What the token was granted, per login flow (GRAPH_API §1 permissions; Instagram Login has
# its own instagram_business_* scopes).
SCOPES: dict[str, tuple[str, ...]] = {
    "facebook_login": (
        "instagram_basic",
        "instagram_manage_insights",
        "pages_read_engagement",
        "pages_show_list",
    ),
    "instagram_login": ("instagram_business_basic", "instagram_business_manage_insights"),
}


def reject(code: int, message: str, *, error_type: str = "OAuthException") -> GraphReject:
    return GraphReject(graph_error(code, message, error_type=error_type))


def unix(moment: datetime | None) -> int:
    """Meta's timestamps in token bodies: unix seconds, 0 for never."""
    return 0 if moment is None else int(moment.timestamp())


class TokenEndpoints:
    """The token endpoints of one `Simulator`, sharing its registry, clock, app and faults
    (package-internal: it reaches into the simulator's private parts)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def routes(self, host: Host) -> list[Route]:
        """The token endpoints `host` serves: the exchange and debug_token on the Facebook
        host, refresh_access_token on the Instagram one."""
        handlers = (
            {"refresh_access_token": self.refresh}
            if host == "instagram"
            else {"oauth/access_token": self.exchange, "debug_token": self.debug}
        )
        return [
            Route(prefix + path, handler, methods=["GET"])
            for path, handler in handlers.items()
            for prefix in ("/", "/{version}/")
        ]

    async def exchange(self, request: Request) -> Response:
        params = dict(request.query_params)
        old = params.get("fb_exchange_token", "")
        answer = await self._preamble(request, "oauth/access_token", old)
        if answer is not None:
            return answer
        sim = self._sim
        try:
            # Meta's order, as far as the live answers show it: parameters are looked for
            # before the app is validated (grant_type=baz with a bogus client_id got 191).
            if not params.get("client_id"):
                raise reject(101, MISSING_CLIENT_ID)
            if params.get("grant_type") != "fb_exchange_token":
                raise reject(191, MISSING_REDIRECT_URI)
            if not old:
                raise reject(1, EXCHANGE_TOKEN_NOT_SPECIFIED)
            if params["client_id"] != sim.app_id:
                raise reject(101, INVALID_APPLICATION_ID)
            if not hmac.compare_digest(params.get("client_secret", ""), sim.app_secret):
                raise reject(1, INVALID_CLIENT_SECRET)
            parent = self._usable(old, "facebook_login", INVALID_ACCESS_TOKEN)
            # Meta does not revoke the token it was given: it stays valid until it expires.
            return self._grant(parent, "facebook_login")
        except GraphReject as error:
            return error.response()

    async def refresh(self, request: Request) -> Response:
        params = dict(request.query_params)
        token = token_of(request, params)
        answer = await self._preamble(request, "refresh_access_token", token)
        if answer is not None:
            return answer
        sim = self._sim
        try:
            if token is None:
                raise reject(104, TOKEN_REQUIRED)
            sim._check_appsecret_proof(token, params, "instagram")  # of the token refreshed
            grant_type = params.get("grant_type", "")
            if grant_type != "ig_refresh_token":
                message = REFRESH_GRANT_TYPE.format(grant_type=grant_type)
                raise reject(100, message, error_type=IG_ERROR_TYPE)
            # A Facebook Login token means nothing to graph.instagram.com.
            parent = self._usable(token, "instagram_login", CANNOT_PARSE_TOKEN)
            if parent is not None and sim._now() - parent.issued_at < REFRESH_MIN_AGE:
                raise reject(100, REFRESH_TOO_EARLY, error_type=IG_ERROR_TYPE)
            return self._grant(parent, "instagram_login")
        except GraphReject as error:
            return error.response()

    async def debug(self, request: Request) -> Response:
        params = dict(request.query_params)
        input_token = params.get("input_token", "")
        answer = await self._preamble(request, "debug_token", input_token)
        if answer is not None:
            return answer
        sim = self._sim
        app_token = token_of(request, params)
        try:
            if app_token is None or "|" not in app_token:
                raise reject(100, APP_TOKEN_REQUIRED)
            if not hmac.compare_digest(app_token, f"{sim.app_id}|{sim.app_secret}"):
                raise reject(190, INVALID_TOKEN_SIGNATURE)
            sim._check_appsecret_proof(app_token, params, "facebook")  # of the app token
            if not input_token:
                raise reject(100, PARAMETER_REQUIRED.format(name="input_token"))
        except GraphReject as error:
            return error.response()
        return JSONResponse({"data": self._debug_data(input_token)})

    # -- shared -----------------------------------------------------------------------------

    async def _preamble(
        self, request: Request, endpoint: Endpoint, token: str | None
    ) -> Response | None:
        """A bad version or an injected fault answers before anything is checked."""
        bad = unknown_version(request)
        if bad is not None:
            return bad
        info = self._sim.token_info(token) if token else None
        return await self._sim._faulted(request, endpoint, info.account_id if info else None)

    def _usable(self, token: str, kind: TokenKind, unknown: str) -> TokenInfo | None:
        """The token's record if it may be exchanged or refreshed; None for a token the
        simulator never issued, which permissive mode takes as valid, never-expiring, and of
        no particular account."""
        sim = self._sim
        problem = sim._registry.problem(token, sim._now())
        if problem is not None:
            raise GraphReject(problem)
        info = sim.token_info(token)
        if info is None and sim.strict_tokens:
            raise reject(190, unknown)
        if info is not None and info.kind != kind:
            raise reject(190, unknown)
        return info

    def _grant(self, parent: TokenInfo | None, kind: TokenKind) -> Response:
        """A new long-lived token for the parent's account; data access does not move."""
        now = self._sim._now()
        expires_at = now + LONG_LIVED
        token = self._sim._registry.issue(
            parent.account_id if parent else None,
            kind,
            issued_at=now,
            expires_at=expires_at,
            data_access_expires_at=parent.data_access_expires_at if parent else None,
        )
        expires_in = int((expires_at - now).total_seconds())
        # key order of oauth_access_token_fb_exchange_token_meta_docs_sample.json
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": expires_in}
        )

    def _debug_data(self, token: str) -> JSON:
        """debug_token's `data`, in the key order of the pyfacebook sample and the live
        captures of an expired token (app_id, type, application, data_access_expires_at,
        error, expires_at, is_valid, issued_at, scopes, granular_scopes, user_id)."""
        sim = self._sim
        info = sim.token_info(token)
        problem = sim._registry.problem(token, sim._now())
        unparseable = info is None and problem is None and sim.strict_tokens
        # The Facebook host cannot read an Instagram-Login token at all (GRAPH_API §7).
        if unparseable or (info is not None and info.kind == "instagram_login"):
            # shape of a third-party fixture for an undecryptable token; Meta knows no more
            error = {"code": 190, "message": CANNOT_PARSE_TOKEN}
            return {"error": error, "is_valid": False, "scopes": []}
        kind: TokenKind = info.kind if info else "facebook_login"
        data: JSON = {"app_id": sim.app_id, "type": "USER", "application": APPLICATION}
        data["data_access_expires_at"] = unix(info.data_access_expires_at if info else None)
        if problem is not None:
            error = problem["error"]
            data["error"] = {
                "code": error["code"],
                "message": error["message"],
                "subcode": error["error_subcode"],
            }
        data["expires_at"] = unix(sim._registry.expires_at(token))
        data["is_valid"] = problem is None
        if problem is None and info is not None:
            data["issued_at"] = unix(info.issued_at)
        data["scopes"] = list(SCOPES[kind])
        data["granular_scopes"] = [{"scope": scope} for scope in SCOPES[kind]]
        data["user_id"] = user_id_of(info, token)
        return data
