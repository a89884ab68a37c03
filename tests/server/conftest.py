from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

import sioserver
from tests._support import asgi


class RawClient:
    """A Socket.IO client written by hand over one WebSocket: what it sends and reads is the wire."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, session: aiohttp.ClientSession) -> None:
        self.ws = ws
        self.session = session
        self.open: dict[str, Any] = {}

    async def send(self, text: str | bytes) -> None:
        if isinstance(text, bytes):
            await self.ws.send_bytes(text)
        else:
            await self.ws.send_str(text)

    async def recv(self, timeout: float = 2.0) -> str | bytes:
        """The next message that is not a ping (pings are answered)."""
        while True:
            msg = await self.ws.receive(timeout=timeout)
            if msg.type == aiohttp.WSMsgType.TEXT:
                if msg.data == "2":
                    await self.ws.send_str("3")
                    continue
                return str(msg.data)
            if msg.type == aiohttp.WSMsgType.BINARY:
                return bytes(msg.data)
            raise ConnectionError(f"websocket ended: {msg.type.name} {msg.data!r}")

    async def closed(self, timeout: float = 2.0) -> bool:
        """True if the server closes the connection within ``timeout`` (messages before are skipped)."""
        try:
            while True:
                await self.recv(timeout)
        except ConnectionError:
            return True
        except TimeoutError:
            return False

    async def silent(self, timeout: float = 0.2) -> bool:
        try:
            await self.recv(timeout)
        except TimeoutError:
            return True
        return False

    async def connect(self, nsp: str = "/", auth: Any = None) -> str:
        prefix = "" if nsp == "/" else nsp + ","
        await self.send("40" + prefix + ("" if auth is None else json.dumps(auth)))
        reply = str(await self.recv())
        head = "40" + prefix
        assert reply.startswith(head + "{"), reply
        return str(json.loads(reply[len(head):])["sid"])

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


Factory = Callable[..., Awaitable[RawClient]]


@contextlib.asynccontextmanager
async def _serving(front: str) -> AsyncIterator[Callable[..., Awaitable[tuple[sioserver.AsyncServer, Factory]]]]:
    """``make(sio)``: ``sio`` served on ``front`` (aiohttp attach, or ASGIApp under an ASGI server), and a
    factory of raw WebSocket clients of it."""
    closers: list[Callable[[], Awaitable[None]]] = []
    clients: list[RawClient] = []

    async def make(sio: sioserver.AsyncServer) -> tuple[sioserver.AsyncServer, Factory]:
        if front == "aiohttp":
            app = web.Application()
            sio.attach(app)
            server = TestServer(app)
            await server.start_server()
            closers.append(server.close)
            base = str(server.make_url("/"))
        else:
            served = await asgi.start(sioserver.ASGIApp(sio), front)
            closers.append(served.close)
            base = served.url + "/"

        async def client(query: str = "") -> RawClient:
            session = aiohttp.ClientSession()
            ws = await session.ws_connect(f"{base}socket.io/?EIO=4&transport=websocket{query}")
            raw = RawClient(ws, session)
            opening = str(await raw.recv())
            assert opening[0] == "0"
            raw.open = json.loads(opening[1:])
            clients.append(raw)
            return raw

        return sio, client

    try:
        yield make
    finally:
        for c in clients:
            await c.close()
        for close in closers:
            await close()
        await asyncio.sleep(0)


@pytest.fixture
async def sio_app() -> AsyncIterator[Callable[..., Awaitable[tuple[sioserver.AsyncServer, Factory]]]]:
    """A Socket.IO server on aiohttp attach, with raw WebSocket clients."""
    async with _serving("aiohttp") as make:
        yield make


#: the fronts the wire tests run on: aiohttp attach, and sioserver.ASGIApp under uvicorn
FRONTS = ["aiohttp", "uvicorn"]


@pytest.fixture(params=FRONTS)
async def sio_app_fronts(request: pytest.FixtureRequest
                         ) -> AsyncIterator[Callable[..., Awaitable[tuple[sioserver.AsyncServer, Factory]]]]:
    """The same on each front (a module overrides ``sio_app`` with it to run on both)."""
    async with _serving(request.param) as make:
        yield make
