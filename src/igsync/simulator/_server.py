"""Serving the simulator over real loopback HTTP with uvicorn, from a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ._app import Simulator

if TYPE_CHECKING:
    import uvicorn

_STARTUP_TIMEOUT = 10.0  # seconds; uvicorn starts in well under one
_GRACEFUL_SHUTDOWN = 2  # seconds; a held `timeout` fault must not hold up the exit


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; binding it ourselves is how `port=0` learns its free port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not the default 0: asyncio turns Nagle's algorithm off (TCP_NODELAY)
    # only on sockets whose proto says TCP, and accepted sockets inherit it. With Nagle on,
    # the body written after the headers waited for the client's delayed ACK: 40 ms added to
    # every answer, which Meta's servers do not add.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections queue from now on, even before uvicorn takes over
    except OSError:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(sim: Simulator) -> uvicorn.Server:
    """A uvicorn server for `sim`. uvicorn is the `simulator` extra (`igsync[simulator]`): the
    demo runs the simulator in-process and needs only starlette; ModuleNotFoundError without."""
    import uvicorn

    config = uvicorn.Config(
        sim.app,
        lifespan="off",
        ws="none",  # no websockets import: nothing here needs it, and it only adds warnings
        log_level="warning",
        # Off because access lines carry the query string, and access_token rides in it.
        access_log=False,
        timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN,
    )
    return uvicorn.Server(config)


@dataclass(frozen=True)
class Served:
    """Where a served simulator answers: IGSYNC_GRAPH_URL and IGSYNC_INSTAGRAM_URL."""

    graph_url: str
    instagram_url: str


@contextmanager
def serve_in_thread(sim: Simulator, host: str = "127.0.0.1", port: int = 0) -> Iterator[Served]:
    """Serve `sim` with uvicorn in a background thread, as both of Meta's hosts: the Facebook
    host on `port` and the Instagram host on a second free port. Yields their base URLs once
    both accept connections, and stops the server (joining the thread) on exit."""
    sock = bind_socket(host, port)
    instagram_sock = bind_socket(host, 0)
    instagram_server = instagram_sock.getsockname()[:2]
    sim.instagram_servers.add(instagram_server)
    server = make_server(sim)
    # uvicorn installs signal handlers only from the main thread, so this thread leaves the
    # caller's Ctrl-C alone.
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock, instagram_sock]},
        name="igsync-simulator",
        daemon=True,
    )
    try:
        thread.start()
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                msg = "the simulator's server did not start"
                raise RuntimeError(msg)
            time.sleep(0.005)
        yield Served(base_url(sock), base_url(instagram_sock))
    finally:
        server.should_exit = True
        if thread.ident is not None:  # started
            thread.join()
        sim.instagram_servers.discard(instagram_server)
        sock.close()
        instagram_sock.close()
