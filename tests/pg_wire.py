"""A loopback TCP proxy in front of a real PostgreSQL server that counts what clients send.

Tests point a store at `WireCounter.url` instead of the server's URL and read what went over
the wire: each statement a client runs is one Parse message (extended query protocol, which
psycopg uses for every statement with parameters, BEGIN and COMMIT included) or one Query
message (simple query protocol); each round trip ends with a Sync or is a Query
(PostgreSQL's "Frontend/Backend Protocol", Message Flow). Bytes are forwarded unchanged, both
ways; the server's side is not parsed.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# The request codes a client may send before its StartupMessage, each answered by the server
# with one byte ('N': not supported, as on the tests' server) or, for a cancel, nothing.
_SSL_REQUEST, _GSSENC_REQUEST, _CANCEL_REQUEST = 80877103, 80877104, 80877102


@dataclass
class WireCounter:
    """Counts of the messages clients sent through the proxy, since the last `reset`."""

    #: message type bytes after startup ('P' Parse, 'Q' Query, 'S' Sync, 'B' Bind, …)
    messages: Counter[str] = field(default_factory=Counter)
    #: the SQL of each Parse and Query, in the order sent
    sql: list[str] = field(default_factory=list)
    url: str = ""

    def reset(self) -> None:
        self.messages.clear()
        self.sql.clear()

    @property
    def statements(self) -> int:
        return self.messages["P"] + self.messages["Q"]

    @property
    def round_trips(self) -> int:
        return self.messages["S"] + self.messages["Q"]

    def _saw(self, kind: bytes, payload: bytes) -> None:
        self.messages[kind.decode()] += 1
        if kind == b"P":  # statement name, then the query, both NUL-terminated
            self.sql.append(payload.split(b"\0", 2)[1].decode())
        elif kind == b"Q":
            self.sql.append(payload.split(b"\0", 1)[0].decode())


@contextlib.asynccontextmanager
async def wire_counter(server_url: str) -> AsyncIterator[WireCounter]:
    """A proxy on 127.0.0.1 for the server of `server_url`; `counter.url` is `server_url`
    through it (sslmode=disable: the bytes must be readable)."""
    target = urlsplit(server_url)
    counter = WireCounter()
    pumps: set[asyncio.Task[None]] = set()

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def client_side(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # untyped messages until the StartupMessage
                head = await reader.readexactly(8)
                length, code = struct.unpack("!II", head)
                writer.write(head + await reader.readexactly(length - 8))
                await writer.drain()
                if code not in (_SSL_REQUEST, _GSSENC_REQUEST):
                    break
            while True:
                head = await reader.readexactly(5)
                kind, length = head[:1], struct.unpack("!I", head[1:])[0]
                payload = await reader.readexactly(length - 4)
                counter._saw(kind, payload)
                writer.write(head + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(target.hostname, target.port)
        for pump in (client_side(reader, up_writer), pipe(up_reader, writer)):
            task = asyncio.create_task(pump)
            pumps.add(task)
            task.add_done_callback(pumps.discard)

    proxy = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    netloc = target.netloc.rsplit("@", 1)[0] + "@" if "@" in target.netloc else ""
    counter.url = target._replace(
        netloc=f"{netloc}127.0.0.1:{port}", query="sslmode=disable"
    ).geturl()
    try:
        yield counter
    finally:
        for task in list(pumps):
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        proxy.close()
        await proxy.wait_closed()
