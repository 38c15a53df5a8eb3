"""The media, story and media-insights endpoints, on both hosts and inside batches:

    GET /{version}/{ig-user-id}/media?fields&limit&after&before&since&until
                                    the account's posts, reels and ads, newest first (_media)
    GET /{version}/{ig-user-id}/stories?fields&limit&after&before
                                    its stories of the last 24 hours (_stories)
    GET /{version}/{ig-media-id}?fields          one media object
    GET /{version}/{ig-media-id}/children?fields a carousel album's children
    GET /{version}/{ig-media-id}/insights?metric&breakdown
                                    lifetime insights per product type (_media_insights)

`me` names the account of the token (Graph's alias). Each call goes through the checks every
Graph call does — injected faults, the token (missing, expired, the other login's, strict
mode: the token's account must own the object), appsecret_proof, the owner's usage headers and
rate limit — and a media id that names nothing answers Graph's 100/33 "Unsupported get
request". Media posted after the simulator's `now` do not exist yet.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._errors import JSON, GraphReject, invalid_parameter, unsupported_request
from ._insights import parse_instant, requested_metrics
from ._media import media_node, page, paging_link, parse_fields
from ._media_insights import check_media_insights, media_insights_body
from ._model import Endpoint, Host, SimAccount, SimMedia
from ._posts import carousel_child, find_media, media_timeline, parse_media_id
from ._routing import VERSION, is_unknown_alias, token_of, unknown_path
from ._stories import is_live, live_stories

if TYPE_CHECKING:
    from ._app import Simulator

Build = Callable[["Call"], JSON]


@dataclass(frozen=True)
class Call:
    """A request that passed the checks, with what its answer is built from."""

    account: SimAccount
    number: int  # the account's position, as media ids carry it
    media: SimMedia | None  # the media object a media endpoint names
    params: Mapping[str, str]
    token: str
    base: str  # the URL the paging links start from


class MediaEndpoints:
    """The media endpoints of one `Simulator` (package-internal, like TokenEndpoints)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def routes(self, host: Host) -> list[Route]:
        """The routes both hosts serve; `/{version}/{node}` goes last, after the token
        endpoints that look like a node (debug_token)."""

        def route(path: str, endpoint: Endpoint, build: Build, *, media: bool) -> Route:
            async def handler(request: Request) -> Response:
                return await self.answer(request, host, endpoint, build, media=media)

            return Route(path, handler, methods=["GET"])

        return [
            route("/{version}/{node}/media", "media", self._media, media=False),
            route("/{version}/{node}/stories", "stories", self._stories, media=False),
            route("/{version}/{node}/children", "media", self._children, media=True),
            route("/{version}/{node}", "media", self._node, media=True),
        ]

    async def insights(self, request: Request, host: Host) -> Response:
        """`GET /{ig-media-id}/insights` (the insights route hands media ids over)."""
        metrics = requested_metrics(request.query_params)
        return await self.answer(
            request, host, "media_insights", self._insights, media=True, metrics=metrics
        )

    def owner_of(self, node: str) -> str | None:
        """The account a media id belongs to (None: not one of the simulator's media ids)."""
        parsed = parse_media_id(node)
        account = self._sim.account_at(parsed[0]) if parsed else None
        return account.account_id if account else None

    async def answer(
        self,
        request: Request,
        host: Host,
        endpoint: Endpoint,
        build: Build,
        *,
        media: bool,
        metrics: tuple[str, ...] = (),
    ) -> Response:
        """Answer one call: `media` endpoints name a media object, the others an account (or
        `me`); `build` makes the body once the checks passed."""
        version, node = request.path_params["version"], request.path_params["node"]
        if not VERSION.fullmatch(version) or is_unknown_alias(node):
            return unknown_path(request.url.path)
        sim = self._sim
        params = dict(request.query_params)
        if media:
            if parse_media_id(node) is None:
                # not a media id: node lookups of accounts (GET /{ig-user-id}) are not faked
                return unknown_path(request.url.path)
            owner = self.owner_of(node)
        elif node == "me":
            token = token_of(request, params)
            info = sim.token_info(token) if token else None
            owner = info.account_id if info else None
        else:
            owner = node
        answer = await sim._faulted(request, endpoint, owner, metrics, node=node)
        if answer is not None:
            return answer
        try:
            token = sim._authenticate(request, params, owner or node, host)
            account = sim.accounts.get(owner) if owner else None
            if account is None:
                raise GraphReject(unsupported_request("GET", node))
            found = self._media_named(account, node) if media else None
            if media and found is None:
                raise GraphReject(unsupported_request("GET", node))
            usage = sim._count_call(account.account_id)
            base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
            call = Call(account, sim.account_number(account.account_id), found, params, token, base)
            try:
                return JSONResponse(build(call), headers=usage)
            except GraphReject as reject:
                reject.headers.update(usage)
                raise
        except GraphReject as reject:
            return reject.response()

    def _media_named(self, account: SimAccount, node: str) -> SimMedia | None:
        """The posted media object `node` names (not one posted after now)."""
        parsed = parse_media_id(node)
        if parsed is None:
            return None
        number, kind, sequence = parsed
        found = find_media(account, number, kind, sequence, self._sim._anchor)
        return found if found is not None and found.timestamp <= self._sim._now() else None

    # -- the answers --------------------------------------------------------------------------

    def _render(self, call: Call) -> Callable[[SimMedia], JSON]:
        fields, now = parse_fields(call.params.get("fields")), self._sim._now()
        return lambda media: media_node(media, fields, call.account.followers, now)

    def _media(self, call: Call) -> JSON:
        render, now = self._render(call), self._sim._now()
        since, until = (self._instant(call.params, name) for name in ("since", "until"))
        items = [
            media
            for media in media_timeline(call.account, call.number, self._sim._anchor)
            if media.timestamp <= now
            and (since is None or media.timestamp >= since)
            and (until is None or media.timestamp <= until)
        ]
        return page(items, call.params, render, paging_link(call.base, call.params, call.token))

    def _stories(self, call: Call) -> JSON:
        render = self._render(call)
        items = live_stories(call.account, call.number, self._sim._now())
        return page(items, call.params, render, paging_link(call.base, call.params, call.token))

    def _children(self, call: Call) -> JSON:
        assert call.media is not None
        render, album = self._render(call), call.media
        return {"data": [render(carousel_child(album, child)) for child in album.children]}

    def _node(self, call: Call) -> JSON:
        assert call.media is not None
        return self._render(call)(call.media)

    def _insights(self, call: Call) -> JSON:
        assert call.media is not None
        media, now = call.media, self._sim._now()
        metrics, breakdown = check_media_insights(media, call.params)
        if call.account.empty or (media.media_product_type == "STORY" and not is_live(media, now)):
            return {"data": []}  # no data, or a story past its 24 hours
        return media_insights_body(media, call.account.followers, metrics, breakdown, now)

    @staticmethod
    def _instant(params: Mapping[str, str], name: str) -> datetime | None:
        raw = params.get(name)
        if raw is None:
            return None
        moment = parse_instant(raw)
        if moment is None:
            raise invalid_parameter(f"(#100) {name} param is not valid")  # invented
        return moment
