"""Many small connection pools behind one httpx transport.

httpcore 1.0.9 re-examines every pooled connection, several times over, each time a request
starts or ends (`AsyncConnectionPool._assign_requests_to_connections` is O(N²) in connections:
encode/httpcore#1035, still open; fixed only in the httpx2 fork). With 64 connections that
loop was 70 % of igsync's CPU for calls sent alone (`--no-batch`, Instagram-Login accounts).
Splitting the connections over pools of at most `POOL_SIZE` keeps each pass short and every
connection kept alive, with httpx's own transport doing all the HTTP.
"""

from __future__ import annotations

import itertools
from types import TracebackType

import httpx

#: connections per pool: small enough that a pool's per-request pass stays cheap
POOL_SIZE = 8


class PooledTransport(httpx.AsyncBaseTransport):
    """`connections` kept-alive connections as ceil(connections / POOL_SIZE) httpx pools.

    Requests go to the pools in turn, so each pool carries an even share of the calls in
    flight; a pool whose connections are all busy queues its request as httpx always does.
    """

    def __init__(self, connections: int) -> None:
        count = max(1, -(-connections // POOL_SIZE))
        size = max(1, -(-connections // count))
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        # One TLS context for all: httpx would load the CA bundle once per pool, 30 ms each
        # (a second at startup for the 32 pools of `--no-batch` at 64 accounts).
        tls = httpx.create_ssl_context()
        self._pools = [httpx.AsyncHTTPTransport(verify=tls, limits=limits) for _ in range(count)]
        self._next = itertools.cycle(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await next(self._next).handle_async_request(request)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for pool in self._pools:
            await pool.aclose()
