"""Request plumbing every endpoint shares: API versions, where a token rides, unknown paths."""

from __future__ import annotations

import re
from collections.abc import Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._errors import GraphReject, graph_error, unsupported_request

VERSION = re.compile(r"v\d+\.\d+")
#: scope key marking a request answered as an item of a batch
BATCH_ITEM = "igsync.batch_item"


def token_of(request: Request, params: Mapping[str, str]) -> str | None:
    """`Authorization: Bearer|OAuth <token>` or the access_token parameter; both are real."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return params.get("access_token") or None


def is_unknown_alias(node: str) -> bool:
    """Graph ids are numeric; `me` is the one alias it resolves (to the token's user)."""
    return not node.isdigit() and node != "me"


def unknown_version(request: Request) -> Response | None:
    """The unknown-path answer when a `/{version}/…` route matched a segment that is no version."""
    version = request.path_params.get("version")
    if version is not None and not VERSION.fullmatch(version):
        return unknown_path(request.url.path)
    return None


def unknown_path(path: str) -> Response:
    # invented bodies (no sample), in Graph's wording for an unknown alias and unknown edge
    segments = [s for s in path.split("/") if s]
    if segments and VERSION.fullmatch(segments[0]):
        segments = segments[1:]
    if segments and is_unknown_alias(segments[0]):
        message = f"(#803) Some of the aliases you requested do not exist: {segments[0]}"
        return JSONResponse(graph_error(803, message), status_code=404)
    if len(segments) == 1:
        return GraphReject(unsupported_request("GET", segments[0])).response()
    rest = "/".join(segments[1:])
    return JSONResponse(graph_error(2500, f"Unknown path components: /{rest}"), status_code=400)
