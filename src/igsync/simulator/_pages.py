"""`GET /{version}/me/accounts`: the Facebook Pages of a Facebook-Login user token, each with
the Instagram professional account linked to it (the Facebook host only).

Meta's getting-started guide for the Instagram API with Facebook Login: a user token lists
its Pages with `GET /me/accounts`, and a Page's `instagram_business_account` field is the
linked Instagram professional account, whose data is then read with the same user token
("Get the User's Pages", "Get the Page's Instagram Business Account",
https://developers.facebook.com/docs/instagram-api/getting-started/). Shapes follow
graph_samples/me_accounts_*.json: `{"data": [page, …], "paging": {"cursors": {"before", "after"},
"next"}}`; a Page without a linked account has no `instagram_business_account` key (Graph leaves
absent fields out); `next` and `after` only while more Pages follow, `previous` after the first.
Default fields (no `fields`): access_token, category, category_list, name, id, tasks (the
pyfacebook sample). `id` is always present. Cursors are opaque; these encode the Page's
position.

Which Pages a token has: those given to `Simulator.issue_user_token`; else, for a token issued
for one account, that account's Page; else (permissive mode, a token nobody issued) one Page
for every simulated account.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._errors import JSON, GraphReject, invalid_parameter
from ._faults import page_id_of
from ._media import parse_fields_of
from ._posts import username
from ._routing import VERSION, unknown_path

if TYPE_CHECKING:
    from ._app import Simulator
    from ._media import Fields

#: Graph's default page size for edges; the most one page holds (invented, as for media)
DEFAULT_LIMIT = 25
MAX_LIMIT = 100
PAGE_FIELDS = frozenset(
    {"id", "name", "access_token", "category", "category_list", "tasks",
     "instagram_business_account"}
)  # fmt: skip
IG_FIELDS = frozenset({"id", "username", "name"})
_DEFAULT_FIELDS = ("access_token", "category", "category_list", "name", "id", "tasks")
_NONEXISTING = "(#100) Tried accessing nonexisting field ({field}) on node type ({node})"
_CURSOR_PREFIX = "simpage:"


@dataclass(frozen=True)
class SimPage:
    """A Facebook Page a user manages; `instagram_account_id`: the Instagram professional
    account linked to it (None: a Page without one), `username` that account's."""

    page_id: str
    name: str
    instagram_account_id: str | None = None
    username: str | None = None
    category: str = "Brand"


def account_page(account_id: str, number: int) -> SimPage:
    """The Page linked to a simulated account: the id the usage headers use (`page_id_of`)."""
    return SimPage(
        page_id=page_id_of(account_id),
        name=f"Simulated Page {number}",
        instagram_account_id=account_id,
        username=username(account_id),
    )


def _cursor(position: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{position}".encode()).decode().rstrip("=")


def _position(raw: str, name: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        if not text.startswith(_CURSOR_PREFIX):
            raise ValueError(text)
        return int(text.removeprefix(_CURSOR_PREFIX))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        # invented: no sample of Graph's answer to a forged cursor
        raise invalid_parameter(f"(#100) The {name} cursor is not valid") from None


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.strip().isdigit() or int(raw) == 0:
        raise invalid_parameter(f'(#100) Param limit must be a positive integer - got "{raw}"')
    return min(int(raw), MAX_LIMIT)


def _check_fields(fields: Fields) -> None:
    for name, sub in fields:
        if name not in PAGE_FIELDS:
            raise invalid_parameter(_NONEXISTING.format(field=name, node="Page"))
        for sub_name, _ in sub or ():
            if name != "instagram_business_account" or sub_name not in IG_FIELDS:
                node = "IGUser" if name == "instagram_business_account" else "Page"
                raise invalid_parameter(_NONEXISTING.format(field=sub_name, node=node))


def render_page(page: SimPage, fields: Fields | None, token: str) -> JSON:
    """One Page as `/me/accounts` lists it, with the fields asked for (`id` always)."""
    wanted = fields or tuple((name, None) for name in _DEFAULT_FIELDS)
    body: JSON = {}
    for name, sub in wanted:
        if name == "instagram_business_account":
            if page.instagram_account_id is None:
                continue  # Graph leaves out a field that has no value
            ig: JSON = {}
            for sub_name, _ in sub or (("id", None),):
                value = {
                    "id": page.instagram_account_id,
                    "username": page.username,
                    "name": page.name,
                }[sub_name]
                if value is not None:
                    ig[sub_name] = value
            ig.setdefault("id", page.instagram_account_id)
            body[name] = ig
        elif name == "access_token":
            # a Page token is derived from the user's; opaque like Meta's
            body[name] = f"EAAGpage{page.page_id}" + token[-24:]
        elif name == "category":
            body[name] = page.category
        elif name == "category_list":
            body[name] = [{"id": "2208", "name": page.category}]
        elif name == "tasks":
            body[name] = ["ANALYZE", "ADVERTISE", "MESSAGING", "MODERATE", "CREATE_CONTENT"]
        elif name == "name":
            body[name] = page.name
    body["id"] = page.page_id
    return body


def pages_body(pages: Sequence[SimPage], params: Mapping[str, str], token: str, base: str) -> JSON:
    """One page of `pages` after `after` or before `before`, `limit` long, with Graph's
    cursor paging."""
    raw_fields = params.get("fields")
    fields = parse_fields_of(raw_fields) if raw_fields and raw_fields.strip() else None
    if fields is not None:
        _check_fields(fields)
    limit = _limit(params.get("limit"))
    start = 0
    if params.get("after"):
        start = _position(params["after"], "after") + 1
    elif params.get("before"):
        end = _position(params["before"], "before")
        start = max(0, end - limit)
        limit = end - start
    chunk = list(pages[start : start + limit])
    if not chunk:
        return {"data": []}
    more = start + len(chunk) < len(pages)
    cursors = {"before": _cursor(start)}
    if more:
        cursors["after"] = _cursor(start + len(chunk) - 1)
    paging: JSON = {"cursors": cursors}

    def link(cursor: tuple[str, str]) -> str:
        pairs = [("access_token", token)]
        pairs += [(k, params[k]) for k in ("fields",) if k in params]
        pairs += [("limit", str(limit)), cursor]
        if "appsecret_proof" in params:
            pairs.append(("appsecret_proof", params["appsecret_proof"]))
        return f"{base}?{urlencode(pairs)}"

    if more:
        paging["next"] = link(("after", cursors["after"]))
    if start > 0:
        paging["previous"] = link(("before", cursors["before"]))
    return {"data": [render_page(p, fields, token) for p in chunk], "paging": paging}


class PagesEndpoint:
    """`/me/accounts` of one `Simulator` (package-internal, like MediaEndpoints)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim
        #: user token -> the Pages it manages (`Simulator.issue_user_token`)
        self.granted: dict[str, tuple[SimPage, ...]] = {}

    def routes(self) -> list[Route]:
        return [Route("/{version}/me/accounts", self.answer, methods=["GET"])]

    def pages_of(self, token: str) -> tuple[SimPage, ...]:
        """The Pages `token` manages (the module docstring says which)."""
        if token in self.granted:
            return self.granted[token]
        sim = self._sim
        info = sim.token_info(token)
        if info is not None and info.account_id is not None:
            account_ids = [info.account_id]
        elif info is None and not sim.strict_tokens:
            account_ids = list(sim.accounts)
        else:
            account_ids = []
        return tuple(account_page(a, sim.account_number(a)) for a in account_ids)

    def accounts_of(self, token: str) -> set[str]:
        """The Instagram accounts `token` reaches through its granted Pages."""
        pages = self.granted.get(token, ())
        return {p.instagram_account_id for p in pages if p.instagram_account_id}

    async def answer(self, request: Request) -> Response:
        version = request.path_params["version"]
        if not VERSION.fullmatch(version):
            return unknown_path(request.url.path)
        sim = self._sim
        params = dict(request.query_params)
        answer = await sim._faulted(request, "me/accounts", None, node="me")
        if answer is not None:
            return answer
        try:
            token = sim._authenticate(request, params, None, "facebook")
            base = f"{request.url.scheme}://{request.url.netloc}{request.url.path}"
            return JSONResponse(pages_body(self.pages_of(token), params, token, base))
        except GraphReject as reject:
            return reject.response()
