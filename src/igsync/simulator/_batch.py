"""`POST /{version}/` with `batch=[…]`: Graph batch requests (GRAPH_API §5), Facebook host only.

Shapes follow batch_request_param_meta_docs.json and batch_response_meta_docs.json: the
`batch` parameter (in the query string or the form body) is a JSON array of `{"method",
"relative_url"}`; the answer is a JSON array in request order of `{"code", "headers": [{"name",
"value"}], "body": "<JSON as a string>"}` (no `headers` with `include_headers=false`), or
`null` for an item Meta timed out (the `batch_timeout` fault). Each item is answered exactly as
the same GET alone would be: its own token (in its `relative_url`, else the top-level token as
the fallback), faults, usage headers and rate limit, one call each. The top-level token must be
valid itself (an app token `APP_ID|APP_SECRET` or a user token), with its appsecret_proof when
the app requires it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Message

from ._asgi import until
from ._errors import CANNOT_PARSE_TOKEN, TOKEN_REQUIRED, GraphReject, graph_error
from ._faults import take_fault
from ._insights import requested_metrics
from ._model import Endpoint
from ._posts import parse_media_id
from ._routing import BATCH_ITEM, token_of, unknown_version

if TYPE_CHECKING:
    from ._app import Simulator

MAX_BATCH = 50  # GRAPH_API §5
# Recalled from users' reports of the live answer; no body in graph_samples/.
TOO_MANY = "(#1) Too many requests in batch message. Maximum batch size is 50"
# invented: Graph's wording for a missing or malformed parameter elsewhere
BATCH_REQUIRED = "(#100) The parameter batch is required"
BATCH_NOT_ARRAY = "(#100) param batch must be a JSON array of requests"

JSONItem = dict[str, Any] | None


class BatchEndpoint:
    """The batch endpoint of one `Simulator` (package-internal, like TokenEndpoints)."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    def routes(self) -> list[Route]:
        return [Route(path, self.batch, methods=["POST"]) for path in ("/", "/{version}/")]

    async def batch(self, request: Request) -> Response:
        # the round trip starts as the request comes in: reading its body is work done
        # within it, as Meta's is
        started = time.monotonic()
        bad = unknown_version(request)
        if bad is not None:
            return bad
        # a urlencoded or a multipart/form-data body, as Meta takes either
        form = await request.form()
        fields = {name: value for name, value in form.items() if isinstance(value, str)}
        params = {**dict(request.query_params), **fields}
        try:
            top = self._top_token(request, params)
            items = self._items(params.get("batch"))
        except GraphReject as reject:
            return reject.response()
        include_headers = params.get("include_headers", "true").lower() != "false"
        version = request.path_params.get("version", "v27.0")
        sim = self._sim
        sim.enter_calls(len(items))
        try:
            answers = []
            for item in items:
                answers.append(await self._answer(request, item, top, version, include_headers))
                # Meta answers a batch's items side by side on its own servers; here they take
                # this one loop's CPU in turn. Letting the loop turn between them keeps another
                # batch's answer, due meanwhile, from waiting for all of this batch's items.
                await asyncio.sleep(0)
            response = JSONResponse(answers)
            # one round trip for the lot, the simulator's own work included (RecordingApp)
            await until(started + sim.latency)
        finally:
            sim.exit_calls(len(items))
        return response

    def _top_token(self, request: Request, params: dict[str, str]) -> str:
        """The fallback token every batch needs; invalid, the whole batch is refused."""
        sim = self._sim
        top = token_of(request, params)
        if top is None:
            raise GraphReject(graph_error(104, TOKEN_REQUIRED))
        if top != f"{sim.app_id}|{sim.app_secret}":
            problem = sim._registry.problem(top, sim._now())
            if problem is not None:
                raise GraphReject(problem)
            if sim.strict_tokens and sim.token_info(top) is None:
                raise GraphReject(graph_error(190, CANNOT_PARSE_TOKEN))
        sim._check_appsecret_proof(top, params, "facebook")
        return top

    @staticmethod
    def _items(raw: str | None) -> list[Any]:
        if raw is None:
            raise GraphReject(graph_error(100, BATCH_REQUIRED))
        try:
            items = json.loads(raw)
        except ValueError:
            items = None
        if not isinstance(items, list) or not items:
            raise GraphReject(graph_error(100, BATCH_NOT_ARRAY))
        if len(items) > MAX_BATCH:
            raise GraphReject(graph_error(1, TOO_MANY))
        return items

    async def _answer(
        self, request: Request, item: Any, top: str, version: str, include_headers: bool
    ) -> JSONItem:
        if not isinstance(item, dict) or not isinstance(item.get("relative_url"), str):
            return _item(400, {}, graph_error(100, BATCH_NOT_ARRAY), include_headers)
        method = str(item.get("method", "GET")).upper()
        parts = urlsplit(item["relative_url"].lstrip("/"))
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        query_string = parts.query
        if "access_token" not in query:  # the top-level token is the fallback
            query["access_token"] = top
            query_string = urlencode(query)
        path = parts.path if parts.path.startswith(version) else f"{version}/{parts.path}"
        endpoint, account = self._fault_target(path)
        if take_fault(self._sim.faults, endpoint, account, requested_metrics(query), in_batch=True):
            return None  # Meta timed this item out
        scope = {
            **{k: v for k, v in request.scope.items() if k in ("http_version", "scheme", "server")},
            "type": "http",
            "method": method,
            "path": f"/{path}",
            "raw_path": f"/{path}".encode(),
            "root_path": "",
            "query_string": query_string.encode(),
            # the batch's Host, so that paging links in an item's body name the host it
            # reached (without it Starlette builds them from `server`: "host:None" in-process)
            "headers": [(b"host", host.encode())] if (host := request.headers.get("host")) else [],
            BATCH_ITEM: True,
        }
        status, headers, chunks = 0, {}, []

        body_sent = False

        async def receive() -> Message:
            # The item's (empty) body once; then whatever the batch's own connection says, so
            # a held item (the `timeout` fault) hears the client hang up like a lone call does.
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return await request.receive()

        async def send(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._sim.facebook_app(scope, receive, send)
        headers.pop("content-length", None)
        return _item(status, headers, b"".join(chunks).decode(), include_headers)

    def _fault_target(self, path: str) -> tuple[Endpoint, str | None]:
        """The endpoint and account an item's path names, as faults match them."""
        segments = path.split("/")  # version, node, edge
        node = segments[1] if len(segments) > 1 else None
        edge = segments[2] if len(segments) > 2 else ""
        if node is not None and parse_media_id(node) is not None:
            owner = self._sim._media_endpoints.owner_of(node)
            return ("media_insights" if edge == "insights" else "media"), owner
        if edge == "media":
            return "media", node
        if edge == "stories":
            return "stories", node
        return "insights", node


def _item(status: int, headers: dict[str, str], body: Any, include_headers: bool) -> JSONItem:
    """One item of the answer: the body as a JSON string, headers as name/value pairs."""
    text = body if isinstance(body, str) else json.dumps(body)
    answer: dict[str, Any] = {"code": status}
    if include_headers:
        answer["headers"] = [{"name": k, "value": v} for k, v in headers.items()]
    answer["body"] = text
    return answer
