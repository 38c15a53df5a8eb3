"""Graph batch requests (GRAPH_API.md §5): many calls in one HTTP round trip.

`POST /{version}/` with `batch=[{"method": "GET", "relative_url": "…"}, …]` (at most 50 items)
answers a list in request order; each item is `{"code", "headers": [{"name", "value"}], "body":
"<JSON as a string>"}`, or `null` when Meta timed that item out. Items are independent: one
failing fails only itself. Each item carries its own access token (and appsecret_proof) in its
`relative_url`, which travels in the POST body, never in an HTTP request's URL; the top-level
`access_token` is the fallback Meta requires (Meta's "Batch Requests" page).

`Batcher` turns concurrent calls into batches: a call waits at most `linger` seconds for others
to share its round trip, and 50 waiting calls leave at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple
from urllib.parse import urlencode

import httpx

from igsync.errors import ErrorKind, GraphError
from igsync.graph._login import LoginApi
from igsync.models import TokenKind

#: Meta's limit of calls in one batch (GRAPH_API.md §5)
MAX_BATCH = 50
#: Graph calls one account has in flight at once, sent alone; batched, one account may fill a
#: whole batch (a year's backfill is 365 one-day total_value calls)
PER_ACCOUNT_CALLS = 4


def per_account_calls(*, batch: bool) -> int:
    """Calls one account may have in flight at once."""
    return MAX_BATCH if batch else PER_ACCOUNT_CALLS


#: the least calls a batch shared by many accounts leaves with, unless `linger` runs out first
MIN_SHARED_BATCH = 10


class PoolSizes(NamedTuple):
    """How a GraphClient serving some accounts at once is sized (`pool_sizes`)."""

    #: Graph calls in flight at once, alone or as batch items
    calls: int
    #: pooled, kept-alive HTTP connections
    connections: int
    #: calls a batch leaves with at once (it leaves sooner when its linger runs out)
    batch_size: int


def pool_sizes(accounts: int, *, batch: bool) -> PoolSizes:
    """How to size a GraphClient serving `accounts` at once.

    Calls in flight: 4 per account, and at least what one account may have. Batch size: for
    one account (a backfill is 365 one-day calls at once) Meta's 50, the fewest round trips;
    for many, whose calls come one or two at a time each, a quarter of the accounts (at least
    10): about four batches are then on the wire at once, and igsync reads one batch's answers
    while the others travel instead of all the accounts waiting in step for one batch
    (benchmarks/sync_all.py: wall / ideal 1.9 with batches of 50 at 64 accounts). Connections:
    one per call in flight sent alone; batched, two per batch those calls fill, so a batch
    never waits for a connection while another is being read.
    """
    calls = max(per_account_calls(batch=batch), accounts * PER_ACCOUNT_CALLS)
    size = MAX_BATCH if accounts <= 1 else min(MAX_BATCH, max(MIN_SHARED_BATCH, -(-accounts // 4)))
    connections = max(2, 2 * -(-calls // size)) if batch else calls
    return PoolSizes(calls, connections, size)


@dataclass(frozen=True)
class GraphRequest:
    """One Graph API GET, sent alone or as an item of a batch: the one request primitive.

    `path` is relative to the version (`{ig-user-id}/insights`); `params` exclude the token
    and appsecret_proof, which the sender adds where they belong for `kind`'s host.
    """

    kind: TokenKind
    path: str
    params: Mapping[str, str]
    token: str = field(repr=False)


@dataclass(frozen=True)
class Answer:
    """One answer: a standalone HTTP response, or one item of a batch's."""

    status: int
    headers: httpx.Headers
    text: str

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        return cls(response.status_code, response.headers, response.text)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        """The parsed body; ValueError when it is not JSON."""
        return json.loads(self.text)


def batch_item(request: GraphRequest, api: LoginApi) -> dict[str, str]:
    """The batch entry of a request: its own token and proof inside `relative_url`."""
    own = urlencode({"access_token": request.token, **api.proof(request.token)})
    shared = _encoded(tuple(request.params.items()))
    query = f"{shared}&{own}" if shared else own
    return {"method": "GET", "relative_url": f"{request.path}?{query}"}


@lru_cache(maxsize=256)
def _encoded(params: tuple[tuple[str, str], ...]) -> str:
    # Every account of a run asks with the same metric, period and window: encoded once,
    # not once an item (urlencode was a tenth of the CPU of building a batch).
    return urlencode(params)


def parse_batch(body: Any, count: int) -> list[Answer | None]:
    """The items of a batch answer, in request order; None for an item Meta timed out.

    Raises a transient GraphError when the answer is not a list of `count` items (a proxy's
    page, a truncated body): the batch is then retried as a whole.
    """
    if not isinstance(body, list) or len(body) != count:
        raise GraphError(
            f"the Graph API answered a batch of {count} without {count} items",
            kind=ErrorKind.TRANSIENT,
        )
    answers: list[Answer | None] = []
    for item in body:
        if not isinstance(item, dict) or not isinstance(item.get("code"), int):
            answers.append(None)
            continue
        pairs = [
            (str(h.get("name")), str(h.get("value")))
            for h in item.get("headers") or []
            if isinstance(h, dict)
        ]
        text = item.get("body")
        answers.append(
            Answer(item["code"], httpx.Headers(pairs), text if isinstance(text, str) else "")
        )
    return answers


PostBatch = Callable[[str, Sequence[GraphRequest]], Awaitable[list[Answer | None]]]


class Batcher:
    """Gathers the calls that share one top-level token into batches of at most `size` (at
    most Meta's 50): a batch leaves when `size` calls wait, or `linger` seconds after its first.

    `post(top_token, requests)` sends one batch. A failure of the whole batch (transport,
    5xx, throttling of the batch itself) reaches every call in it, whose own retry policy then
    sends it again; a `null` item becomes a transient error of that call only.
    """

    def __init__(
        self,
        post: PostBatch,
        top_token: str,
        *,
        linger: float,
        size: int = MAX_BATCH,
        on_idle: Callable[[Batcher], None] | None = None,
    ) -> None:
        if not 1 <= size <= MAX_BATCH:
            raise ValueError(f"batch size {size}: expected 1 to {MAX_BATCH}")
        self._post = post
        self._size = size
        self._on_idle = on_idle
        self._top = top_token
        self._linger = linger
        self._pending: list[tuple[GraphRequest, asyncio.Future[Answer]]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    async def submit(self, request: GraphRequest) -> Answer:
        """The answer to `request`, sent in the next batch; raises GraphError for the whole
        batch's failure or a `null` item."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._pending.append((request, future))
        if len(self._pending) >= self._size:
            self._flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._linger, self._flush)
        return await future

    def _flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        while self._pending:
            items, self._pending = self._pending[: self._size], self._pending[self._size :]
            task = asyncio.get_running_loop().create_task(self._send(items))
            self._sending.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        if not self._sending and not self._pending and self._on_idle is not None:
            self._on_idle(self)  # a batcher per token must not outlive its account's calls

    async def _send(self, items: list[tuple[GraphRequest, asyncio.Future[Answer]]]) -> None:
        live = [(r, f) for r, f in items if not f.done()]  # a cancelled caller is not sent
        if not live:
            return
        try:
            answers = await self._post(self._top, [r for r, _ in live])
        except Exception as error:  # GraphError, or a bug: every waiting call must hear of it
            for _, future in live:
                if not future.done():
                    # one each: a caller's retry policy may reclassify its own
                    future.set_exception(error.clone() if isinstance(error, GraphError) else error)
            return
        for (_, future), answer in zip(live, answers, strict=True):
            if future.done():
                continue
            if answer is None:
                future.set_exception(
                    GraphError("Meta timed out this batch item", kind=ErrorKind.TRANSIENT)
                )
            else:
                future.set_result(answer)
