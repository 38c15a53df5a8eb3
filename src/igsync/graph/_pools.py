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
import os
import ssl
import threading
from concurrent.futures import Future
from types import TracebackType

import httpx

#: connections per pool: small enough that a pool's per-request pass stays cheap
POOL_SIZE = 8


#: the TLS context being built, or built, and the trust settings it was built for
_tls: tuple[tuple[str | None, str | None], Future[ssl.SSLContext]] | None = None
_tls_lock = threading.Lock()


def _trust() -> tuple[str | None, str | None]:
    # what httpx.create_ssl_context reads from the environment (httpx 0.28 `_config`)
    return os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")


def load_tls_context() -> Future[ssl.SSLContext]:
    """Start building the TLS context Graph connections verify with, on a thread of its own.

    Loading the CA bundle is 25-30 ms of OpenSSL work that releases the GIL (CPython's
    `_ssl` wraps `SSL_CTX_load_verify_locations` in Py_BEGIN_ALLOW_THREADS): a command that
    will talk to Meta calls this first and gets the context for nothing while it imports,
    reads its settings and opens its store. Idempotent: the same build while the trust
    settings stay the same; `tls_context` waits for it.
    """
    global _tls
    trust = _trust()
    with _tls_lock:
        if _tls is not None and _tls[0] == trust:
            return _tls[1]
        future: Future[ssl.SSLContext] = Future()
        _tls = (trust, future)

    def build() -> None:
        try:
            future.set_result(httpx.create_ssl_context())
        except BaseException as error:  # raised again by tls_context, where it is waited for
            future.set_exception(error)

    # Not a daemon: Python waits for it before it finalizes. A command that fails at once
    # (a bad option) would otherwise exit while OpenSSL is still loading the bundle, and
    # OpenSSL's own exit handler then freed what the thread was using (SIGSEGV in 11 runs of 150).
    threading.Thread(target=build, name="igsync-tls").start()
    return future


def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CA bundle, or SSL_CERT_FILE / SSL_CERT_DIR), one
    per process for the trust settings of the moment: an SSLContext is safe to share.
    Raises what httpx.create_ssl_context raises (an unreadable SSL_CERT_FILE: OSError)."""
    return load_tls_context().result()


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
        tls = tls_context()
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
