from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import sioserver.engineio
from tests._support import asgi
from tests._support.wait import wait_until

EchoFactory = Callable[..., Awaitable[tuple[sioserver.engineio.AsyncServer, TestClient[Any, Any]]]]

PATH = "/engine.io/"


async def handshake(client: Any, **query: str) -> dict[str, Any]:
    resp = await client.get(PATH, params={"EIO": "4", "transport": "polling", **query})
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "text/plain; charset=UTF-8"
    body = await resp.text()
    assert body[0] == "0"
    return json.loads(body[1:])  # type: ignore[no-any-return]


async def disconnected(eio: sioserver.engineio.AsyncServer, sid: str, timeout: float = 2.0) -> str:
    """Wait for the disconnect handler of ``sid``; returns the reason."""
    await asyncio.wait_for(eio.disconnected[sid].wait(), timeout)  # type: ignore[attr-defined]
    return next(e[2] for e in eio.events if e[0] == "disconnect" and e[1] == sid)  # type: ignore[attr-defined]


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> None:
    """Wait for a state of the server no event announces (a GET parked)."""
    await wait_until(predicate, timeout=timeout, what="the server to reach the state", interval=0.001)


def parked(eio: sioserver.engineio.AsyncServer, sid: str) -> Callable[[], bool]:
    return lambda: eio.sessions[sid].poll_waiter is not None


#: the fronts the engine's tests run on: aiohttp attach, and ``sioserver.engineio.ASGIApp`` under uvicorn
FRONTS = ["aiohttp", "uvicorn"]


def closed_without_status(client: Any) -> int:
    """The code a client reads when the server closes a session's WebSocket: no status (1005), as the
    reference; an ASGI ``websocket.close`` always carries one, so under ASGI the client reads 1000."""
    return 1000 if isinstance(client, asgi.UrlClient) else 1005


def own_websocket_only(client: Any) -> None:
    """Skip under ASGI a test that shrinks the server socket's kernel buffer (an ASGI server's socket is
    not the app's to reach): what it checks is sioserver's own RFC 6455 connection's buffering."""
    if isinstance(client, asgi.UrlClient):
        pytest.skip("needs the server-side socket of sioserver's own WebSocket connection")


@pytest.fixture(params=FRONTS)
async def echo_server(request: pytest.FixtureRequest) -> AsyncIterator[EchoFactory]:
    """An Engine.IO echo server on a real port, on each front; events are recorded on ``eio.events``.
    The client is aiohttp's ``TestClient`` (aiohttp) or the same calls on the ASGI server's URL."""
    clients: list[Any] = []
    servers: list[asgi.AsgiServer] = []

    async def make(**options: Any) -> tuple[sioserver.engineio.AsyncServer, TestClient[Any, Any]]:
        eio = sioserver.engineio.AsyncServer(**options)
        events: list[tuple[Any, ...]] = []
        eio.events = events  # type: ignore[attr-defined]
        closed: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        eio.disconnected = closed  # type: ignore[attr-defined]

        @eio.on("connect")
        def connect(sid: str, environ: dict[str, Any]) -> bool:
            events.append(("connect", sid))
            return environ.get("QUERY_STRING", "").find("refuse=1") < 0

        @eio.on("message")
        async def message(sid: str, data: str | bytes) -> None:
            events.append(("message", sid, data))
            if data == "close-me":
                await eio.disconnect(sid)
            else:
                await eio.send(sid, data)

        @eio.on("disconnect")
        def disconnect(sid: str, reason: str) -> None:
            events.append(("disconnect", sid, reason))
            closed[sid].set()

        if request.param == "aiohttp":
            app = web.Application()
            eio.attach(app)
            client: Any = TestClient(TestServer(app))
            await client.start_server()
        else:
            server = await asgi.start(sioserver.engineio.ASGIApp(eio), request.param)
            servers.append(server)
            client = asgi.UrlClient(server.port)
        clients.append(client)
        return eio, client

    yield make
    for client in clients:
        await client.close()
    for server in servers:
        await server.close()
