"""The ASGI layer around both hosts: which host a request reached, and what `sim.requests`
records of it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._model import Host, SimRequest
from ._routing import BATCH_ITEM

if TYPE_CHECKING:
    from ._app import Simulator


class HostRouter:
    """Both hosts behind one ASGI app: each request goes to the host it reached."""

    def __init__(self, sim: Simulator) -> None:
        self._sim = sim

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sim = self._sim
        app = sim.instagram_app if sim.host_of(scope) == "instagram" else sim.facebook_app
        await app(scope, receive, send)


class RecordingApp:
    """One host's app: records every request into `sim.requests` (with the host it reached)
    and applies the configured latency: a call is answered `latency` seconds after it came in,
    the simulator's own work included (as Meta's is in its round trip), so that a busy
    simulator does not add its CPU time to every call a benchmark measures."""

    def __init__(self, app: ASGIApp, sim: Simulator, host: Host) -> None:
        self._app = app
        self._sim = sim
        self._host: Host = host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        in_batch = bool(scope.get(BATCH_ITEM))
        record = SimRequest(
            method=scope["method"],
            path=scope["path"],
            query=dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
            host=self._host,
            in_batch=in_batch,
        )
        self._sim.requests.append(record)

        async def send_and_record(message: Message) -> None:
            if message["type"] == "http.response.start":
                record.status = message["status"]
            await send(message)

        # A batch counts its items and waits the latency once for all of them (BatchEndpoint);
        # its items, answered inside it, wait none of their own.
        one_call = not in_batch and scope["method"] == "GET"
        if one_call:
            self._sim.enter_calls(1)
        try:
            if one_call and self._sim.latency > 0:
                await answer_after(self._sim.latency, self._app, scope, receive, send_and_record)
            else:
                await self._app(scope, receive, send_and_record)
        finally:
            if one_call:
                self._sim.exit_calls(1)


async def answer_after(
    latency: float, app: ASGIApp, scope: Scope, receive: Receive, send: Send
) -> None:
    """Run `app`, holding its answer until `latency` seconds (monotonic) after the call began."""
    started = time.monotonic()
    held: list[Message] = []

    async def hold(message: Message) -> None:
        held.append(message)

    await app(scope, receive, hold)
    await until(started + latency)
    for message in held:
        await send(message)


async def until(deadline: float) -> None:
    """Sleep until `deadline` (time.monotonic()); at once when it has passed."""
    left = deadline - time.monotonic()
    if left > 0:
        await anyio.sleep(left)
